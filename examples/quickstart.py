"""Train a small net on make_moons and print its accuracy, on the backend you choose.

python examples/quickstart.py --backend numpy      # or cupy, torch, strict, auto
"""

import nnbackend as nb

args = nb.cli.example_parser(__doc__, epochs=300).parse_args()
X, y = nb.datasets.make_moons(200, noise=0.2, seed=args.seed)
model = nb.Sequential(
    [nb.layers.Dense(2, 16), nb.layers.Tanh(), nb.layers.Dense(16, 2)],
    backend=nb.cli.backend_from_args(args), seed=args.seed,
)  # fmt: skip
model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.Adam(0.01),
          epochs=nb.cli.max_steps(args.epochs), batch_size=None)  # fmt: skip
print(f"training accuracy on {model.backend.name}: {model.evaluate(X, y)['accuracy']:.3f}")
