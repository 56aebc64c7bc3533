"""The slot for nnbackend's own run of a workload (not written yet).

Contract with the harness:

    train = run_nnbackend(workload, backend_name, data)
    train()          # timed: one full training run, as workloads.Workload describes it

``run_nnbackend`` does everything that is not training before it returns: import
nnbackend, build the model for ``workload.sizes`` / ``hidden`` / ``output`` on
``nb.get_backend(backend_name, dtype=workload.dtype)``, and move ``data.X`` / ``data.y``
(host NumPy) to the device. Start from ``data.init`` ([(W, b), ...], W of shape
(n_in, n_out)) if the model can take given weights, so that every implementation
starts from the same point. The returned ``train`` runs the training loop; the harness
waits for the device (CuPy stream, torch.cuda) after it returns and stops the clock.
Optionally ``train`` returns the trained [(W, b), ...] as host NumPy, for checks.

Workloads 1 and 5 are full batch (``workload.batch_size is None``): one step per
epoch, ``workload.epochs`` steps, no shuffling needed. Workload 1 trains on the sum
over samples with ``workload.reg_lambda * W`` added to each weight gradient
(``workload.loss_sum``). A library whose loss is the mean over samples, with an L2 term
``l2/2 * sum(W**2)``, does the same steps with ``lr = workload.lr * n`` and
``l2 = workload.reg_lambda / n`` (n = 200): that is 2.0 and 5e-5.
"""

from __future__ import annotations


def run_nnbackend(workload, backend_name, data):
    raise NotImplementedError("filled in once the core lands")
    # The intended shape, for workload 2 (names as the core will have them):
    #
    # import nnbackend as nb
    # be = nb.get_backend(backend_name, dtype=workload.dtype)
    # model = nb.Sequential([nb.layers.Dense(784, 50), nb.layers.Sigmoid(),
    #                        nb.layers.Dense(50, 10)], backend=be, seed=0)
    # X, y = be.asarray(data.X), be.asarray(data.y)
    #
    # def train():
    #     model.fit(X, y, loss=nb.losses.SoftmaxCrossEntropy(), optimizer=nb.optim.SGD(lr=0.1),
    #               epochs=workload.epochs, batch_size=workload.batch_size, verbose=0)
    #
    # return train
