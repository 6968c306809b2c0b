"""A pool of worker processes that each hold a copy of a model and encode chunks of a list.

Workers call the model's ``_inference(inputs, **kwargs)`` on each chunk. The pool is the same
dictionary sentence-transformers hands out (``input`` and ``output`` queues, ``processes``), so
scripts that start, pass and stop pools run unchanged. Workers are spawned, never forked: a fork
would copy the parent's thread pools (torch, Rust) in a locked state.
"""

from __future__ import annotations

import logging
import math
import pickle
import queue
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.multiprocessing as mp
from tqdm.autonotebook import trange

from embedforge.exceptions import InvalidArgumentError

logger = logging.getLogger(__name__)

#: CPU workers started when no devices are given (sentence-transformers' default without CUDA).
DEFAULT_CPU_WORKERS = 4
#: Largest chunk a worker takes at once when ``chunk_size`` is not given.
MAX_CHUNK = 5000
#: Seconds between checks for workers that died without reporting.
POLL_SECONDS = 1.0

Pool = dict[str, Any]


def start_pool(model: torch.nn.Module, target_devices: list[str] | None) -> Pool:
    """Spawn one worker process per target device, each holding ``model`` on that device.

    The model moves to the CPU and into shared memory first, so workers map its weights rather
    than copying them through the queue.
    """
    if target_devices is None:
        if torch.cuda.is_available():
            target_devices = [f"cuda:{index}" for index in range(torch.cuda.device_count())]
        else:
            logger.info("CUDA is not available; starting %d CPU workers", DEFAULT_CPU_WORKERS)
            target_devices = ["cpu"] * DEFAULT_CPU_WORKERS
    if not isinstance(target_devices, (list, tuple)) or not target_devices:
        raise InvalidArgumentError(
            f"target_devices={target_devices!r}; expected a non-empty list of devices such as ['cpu', 'cpu']"
        )
    for device in target_devices:
        try:
            torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise InvalidArgumentError(
                f"target_devices contains {device!r}, which is not a torch device ({error})"
            ) from None
    logger.info("Starting a multi-process pool on devices: %s", ", ".join(map(str, target_devices)))
    model.to("cpu")
    model.share_memory()
    context = mp.get_context("spawn")
    input_queue = context.Queue()
    output_queue = context.Queue()
    processes = []
    for device in target_devices:
        process = context.Process(
            target=_serve_chunks, args=(str(device), model, input_queue, output_queue), daemon=True
        )
        process.start()
        processes.append(process)
    return {"input": input_queue, "output": output_queue, "processes": processes}


def stop_pool(pool: Pool) -> None:
    """Terminate the pool's processes and close its queues."""
    for process in pool["processes"]:
        process.terminate()
    for process in pool["processes"]:
        process.join()
        process.close()
    pool["input"].cancel_join_thread()
    pool["input"].close()
    pool["output"].close()


def run_in_pool(
    model: torch.nn.Module,
    inputs: Sequence[Any],
    pool: Pool | None,
    devices: list[str] | None,
    chunk_size: int | None,
    show_progress_bar: bool,
    inference_kwargs: dict[str, Any],
) -> Any:
    """Encode ``inputs`` in chunks on ``pool`` (or on a pool started for ``devices`` and stopped after).

    Returns the chunks' results joined in input order: one tensor when the workers return
    tensors, else one flat list.
    """
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise InvalidArgumentError(f"chunk_size={chunk_size!r}; expected a positive integer or None")
    if pool is not None and not (isinstance(pool, dict) and {"input", "output", "processes"} <= set(pool)):
        raise InvalidArgumentError(f"pool={pool!r}; expected the dictionary returned by start_multi_process_pool()")
    own_pool = pool is None
    if own_pool:
        pool = start_pool(model, devices)
    assert pool is not None
    try:
        if chunk_size is None:
            chunk_size = max(1, min(math.ceil(len(inputs) / len(pool["processes"]) / 10), MAX_CHUNK))
        # Results carry this call's token: a call interrupted earlier (Ctrl-C, a dead worker) may
        # have left results in the queue, and those must not be taken for this call's chunks.
        call = uuid.uuid4().hex
        starts = range(0, len(inputs), chunk_size)
        for chunk_id, start in enumerate(starts):
            pool["input"].put((call, chunk_id, list(inputs[start : start + chunk_size]), inference_kwargs))
        results: list[Any] = [None] * len(starts)
        for _ in trange(len(starts), desc="Chunks", disable=not show_progress_bar):
            chunk_id, result = _next_result(pool, call)
            results[chunk_id] = result
    finally:
        if own_pool:
            stop_pool(pool)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    if isinstance(results[0], torch.Tensor):
        return torch.cat(results)
    return [item for chunk in results for item in chunk]


def _serve_chunks(device: str, model: Any, input_queue: Any, output_queue: Any) -> None:
    """A worker's loop: encode each queued chunk on ``device`` and report the result (or the error).

    Runs until the pool terminates the process.
    """
    model.to(device)
    while True:
        call, chunk_id, inputs, kwargs = input_queue.get()
        try:
            result = model._inference(inputs, **kwargs)
            if isinstance(result, torch.Tensor):
                result = result.cpu()
        except Exception as error:
            logger.exception("Worker on %s failed on chunk %d", device, chunk_id)
            output_queue.put((call, chunk_id, _sendable(error)))
        else:
            output_queue.put((call, chunk_id, result))


def _sendable(error: Exception) -> Exception:
    """The error itself if it survives the queue's pickling, else its traceback as a RuntimeError.

    The queue pickles in a background thread; an error that fails there would never arrive and
    leave the parent waiting for that chunk forever.
    """
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - pickling can fail with any exception type the error's class raises
        return RuntimeError("".join(traceback.format_exception(error)))
    return error


def _next_result(pool: Pool, call: str) -> tuple[int, Any]:
    """The next (chunk_id, result) of ``call`` from the output queue; fails if a worker died instead."""
    while True:
        try:
            result_call, chunk_id, result = pool["output"].get(timeout=POLL_SECONDS)
        except queue.Empty:
            pass
        else:
            if result_call == call:
                return chunk_id, result
            continue  # a stale result of an interrupted call
        dead = [process for process in pool["processes"] if not process.is_alive()]
        if dead:
            details = ", ".join(f"pid {process.pid} (exit code {process.exitcode})" for process in dead)
            raise RuntimeError(
                f"{len(dead)} worker(s) of the multi-process pool died: {details}; stop the pool and start a new one"
            )


class MultiProcessMixin:
    """``start_multi_process_pool``/``stop_multi_process_pool`` for a model with ``_inference``."""

    if TYPE_CHECKING:
        # Declared for the checker only: each model kind defines its own ``_inference``, and
        # without this declaration nn.Module's ``__getattr__`` types the lookup as a Tensor.
        _inference: Callable[..., Any]

    def start_multi_process_pool(self, target_devices: list[str] | None = None) -> Pool:
        """Start one worker process per device (default: every CUDA device, else 4 CPU workers).

        Pass the returned pool as ``pool=`` and close it with :meth:`stop_multi_process_pool`.
        The model stays on the CPU afterwards.
        """
        assert isinstance(self, torch.nn.Module)
        return start_pool(self, target_devices)

    @staticmethod
    def stop_multi_process_pool(pool: Pool) -> None:
        """Terminate the workers of a pool from :meth:`start_multi_process_pool`."""
        stop_pool(pool)

    def _run_inference(
        self,
        inputs: list[Any],
        device: str | list[str] | None,
        pool: Pool | None,
        chunk_size: int | None,
        inference_kwargs: dict[str, Any],
    ) -> Any:
        """``self._inference`` on ``inputs``: in this process (on ``device``, when given), or in
        chunks on ``pool`` or on a pool started for a list of devices."""
        assert isinstance(self, torch.nn.Module)
        if isinstance(device, list) and not device:
            raise InvalidArgumentError("device=[]; expected a device, or a non-empty list of devices for a pool")
        if pool is None and not isinstance(device, list):
            if device is not None:
                self.to(device)
            return self._inference(inputs, **inference_kwargs)
        return run_in_pool(
            self,
            inputs,
            pool=pool,
            # Without a pool, ``device`` is a list here (the branch above took the rest).
            devices=device if pool is None and isinstance(device, list) else None,
            chunk_size=chunk_size,
            show_progress_bar=inference_kwargs["show_progress_bar"],
            inference_kwargs={**inference_kwargs, "show_progress_bar": False},
        )
