"""The one exception tree of vidstream.

Every error a user can cause or meet derives from :class:`VidstreamError` and also from the
builtin it naturally is, so callers may catch either::

    VidstreamError
    ├── InputError (ValueError)                  the input cannot be read as video
    │   ├── InputNotFoundError (FileNotFoundError)
    │   ├── NoVideoStreamError
    │   ├── FrameTooLargeError                   --max-pixels exceeded
    │   ├── EmptyInputError                      opened, but no frame decoded
    │   └── CorruptInputError                    too many decode errors / unreadable
    ├── SourceError (ConnectionError)            a live source failed
    │   └── StallError (TimeoutError)            no frame within --stall-timeout
    ├── ModelError (ValueError)                  a model cannot be loaded or called
    │   ├── ModelNotFoundError (FileNotFoundError)
    │   ├── TensorNameError (KeyError)           a name the model does not have
    │   └── ModelPullError (RuntimeError)        fetching/converting the default model failed
    ├── OutputError (OSError)                    an output cannot be written
    ├── ConfigError (ValueError)                 a pipeline file or option is invalid
    ├── StageError (RuntimeError)                a stage raised; wraps the original as __cause__
    └── Cancelled                                the run was stopped (Ctrl-C / stop())

Errors carry context (``stage``, ``frame``, ``source``) so the CLI can print one useful line.
"""

from __future__ import annotations


class VidstreamError(Exception):
    """Root of every vidstream error."""

    def __init__(
        self,
        message: str,
        *,
        stage: str | None = None,
        frame: int | None = None,
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.frame = frame
        self.source = source

    def __str__(self) -> str:
        return self.message


class InputError(VidstreamError, ValueError):
    """The input cannot be read as a video."""


class InputNotFoundError(InputError, FileNotFoundError):
    """The input file does not exist."""


class NoVideoStreamError(InputError):
    """The input has no video stream."""


class FrameTooLargeError(InputError):
    """The input claims a frame size above the allowed maximum."""


class EmptyInputError(InputError):
    """The input opened but yielded no frame at all."""


class CorruptInputError(InputError):
    """The input is damaged beyond the decode-error budget."""


class SourceError(VidstreamError, ConnectionError):
    """A live source could not be opened or was lost."""


class StallError(SourceError, TimeoutError):
    """A live source delivered no frame for too long."""


class ModelError(VidstreamError, ValueError):
    """A model cannot be loaded or called."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """The model path does not exist or holds no model."""


class TensorNameError(ModelError, KeyError):
    """An input or output name the model does not have."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class ModelPullError(ModelError, RuntimeError):
    """Fetching or converting a registry model failed."""


class OutputError(VidstreamError, OSError):
    """An output file cannot be written."""


class ConfigError(VidstreamError, ValueError):
    """A pipeline definition or option is invalid."""


class StageError(VidstreamError, RuntimeError):
    """A stage raised an exception; the original is the ``__cause__``."""


class Cancelled(VidstreamError):
    """The run was stopped before the input ended."""
