"""Logging helpers sentence-transformers scripts import: a tqdm-safe handler and a logger setup."""

from __future__ import annotations

import logging

import tqdm

#: Level of the extra ``NOTICE`` records (between INFO and WARNING), as in sentence-transformers.
NOTICE = 25


class LoggingHandler(logging.Handler):
    """Writes records through ``tqdm.write``, so log lines do not break an active progress bar.

    The usual setup in training scripts:
    ``logging.basicConfig(format="%(asctime)s - %(message)s", level=logging.INFO, handlers=[LoggingHandler()])``.
    """

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and print it above any progress bar."""
        try:
            tqdm.tqdm.write(self.format(record))
            self.flush()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:  # noqa: BLE001 - logging's contract: report through handleError, never raise
            self.handleError(record)


def install_logger(
    given_logger: logging.Logger, level: int = logging.WARNING, fmt: str = "%(levelname)s:%(name)s:%(message)s"
) -> None:
    """Give ``given_logger`` a stream handler with ``fmt`` at ``level``, and add a ``NOTICE`` level.

    sentence-transformers colours the output with ``coloredlogs`` when it is installed; this
    version writes plain lines and needs no extra package.
    """
    logging.addLevelName(NOTICE, "NOTICE")
    if not hasattr(logging.Logger, "notice"):

        def notice(self: logging.Logger, message: object, *args: object, **kwargs: object) -> None:
            if self.isEnabledFor(NOTICE):
                self._log(NOTICE, message, args, **kwargs)  # type: ignore[arg-type]

        logging.Logger.notice = notice  # type: ignore[attr-defined]
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(fmt))
    given_logger.addHandler(handler)
    given_logger.setLevel(level)
