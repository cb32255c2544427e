"""``ral train`` stopped by SIGTERM (SLURM, Kubernetes, ``timeout``) or SIGINT (Ctrl+C): a mid-epoch
checkpoint, one line with the resume command, exit status 128 + the signal number.

Lightning already catches SIGTERM during ``fit`` (it sets ``trainer.received_sigterm``, forwards
the signal to the processes it launched and stops at the end of the running batch by raising
``SIGTERMException``), but that exception is a ``SystemExit`` with status 0 and nothing is saved:
a scheduler records success. :class:`StopOnSignal` adds what is missing: at the end of the batch
during which the signal came it writes ``mid-epoch.ckpt`` as :class:`~ral.engine.callbacks.RunCheckpoints`
does (same point of the loop, so ``--resume`` continues bit for bit), and :func:`stop_on_signals`
turns the stop into :class:`TrainingStopped` (status 143 for SIGTERM, 130 for SIGINT).

SIGINT, which Lightning turns into an abrupt ``KeyboardInterrupt``, is made to take the same path
by re-sending it to the process as SIGTERM; a second Ctrl+C interrupts at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ral.engine.callbacks import MID_EPOCH

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(SystemExit):
    """``ral train`` stopped by a signal after saving its state; the exit status is 128 + ``signum``.

    Attributes:
        signum: the signal. checkpoint: the checkpoint ``--resume`` continues from (None: none yet).
    """

    def __init__(self, signum: int, checkpoint: Path | None) -> None:
        super().__init__(128 + signum)
        self.signum, self.checkpoint = signum, checkpoint


class StopOnSignal(L.Callback):
    """Save ``mid-epoch.ckpt`` at the end of the batch during which SIGTERM / SIGINT came, then stop.

    Not between the batches of one accumulated gradient (their partial gradient would be lost; the
    signal is then answered at the next optimiser step). In a distributed run every process saves
    together (the save is collective): the decision is reduced over the processes at each batch.
    Without a new checkpoint (the resume starts from the newest one, ``last.ckpt`` of the previous
    epoch or an earlier ``mid-epoch.ckpt``, as after a kill): a signal during an epoch's last batch
    (a checkpoint there would skip the epoch's validation on resume, so
    :class:`~ral.engine.callbacks.RunCheckpoints` never writes one either), during validation, or
    in a distributed run between two batches (Lightning then stops every process at once).

    Args:
        folder: ``<output_dir>/checkpoints``.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.signum: int | None = None  # set by the handlers of stop_on_signals
        self.saved: Path | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        asked = self.signum is not None or trainer.received_sigterm
        if trainer.world_size > 1:
            asked = trainer.strategy.reduce_boolean_decision(asked, all=False)
        if not asked:
            return
        self.signum = self.signum or signal.SIGTERM  # (another process of a distributed run got it)
        if batch_idx + 1 >= trainer.num_training_batches:
            raise SIGTERMException  # the epoch's last batch: stop before its validation, without a checkpoint
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            # inside an accumulated gradient: Lightning would stop at the end of this batch, so its flag
            # (private: Lightning has no public way to defer the stop) waits for the optimiser step
            trainer._signal_connector.received_sigterm = False
            return
        trainer.save_checkpoint(self.folder / MID_EPOCH, weights_only=False)  # as RunCheckpoints does
        self.saved = self.folder / MID_EPOCH
        raise SIGTERMException  # Lightning's own stop (a SystemExit), caught by stop_on_signals


@contextmanager
def stop_on_signals(stopper: StopOnSignal) -> Iterator[None]:
    """Around ``trainer.fit``: record SIGTERM / SIGINT in ``stopper`` and turn the stop they cause into
    :class:`TrainingStopped` (a run that ends normally although a signal came ends normally).

    Handlers are installed only in the main thread (Python allows no other).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}

    def on_sigterm(signum: int, frame: Any) -> None:  # called by Lightning's SIGTERM handler during fit
        if stopper.signum is None:
            stopper.signum = signum

    def on_sigint(signum: int, frame: Any) -> None:
        stopper.signum = stopper.signum or signum
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl+C interrupts at once
        signal.raise_signal(signal.SIGTERM)  # Lightning's stop at the end of the batch

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    except SystemExit:  # Lightning's SIGTERMException, or its exit after a second Ctrl+C
        if stopper.signum is None:
            raise
        raise TrainingStopped(stopper.signum, stopper.saved) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def report_stop(stopped: TrainingStopped, output_dir: str | Path, newest: Path | None) -> None:
    """The one line ``ral train`` prints when a signal stopped it (on stderr)."""
    name = signal.Signals(stopped.signum).name
    config = Path(output_dir) / "config.yaml"
    state = f"saved {newest}" if newest is not None else "no checkpoint was written yet"
    print(
        f"ral train: stopped by {name}; {state}; continue with: ral train --config {config} --resume",
        file=sys.stderr,
        flush=True,
    )
