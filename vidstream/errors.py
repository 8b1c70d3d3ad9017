"""The one exception tree of vidstream.

Every error a user can cause or meet derives from :class:`VidstreamError` and also from the
builtin it naturally is, so callers may catch either::

    VidstreamError
    ├── InputError (ValueError)                  the input cannot be read as video
    │   ├── InputNotFoundError (FileNotFoundError)
    │   ├── NoVideoStreamError
    │   ├── FrameTooLargeError                   max_pixels exceeded
    │   ├── EmptyInputError                      opened, but no frame decoded
    │   └── CorruptInputError                    too many decode errors / unreadable
    ├── SourceError (ConnectionError)            a live source failed
    │   └── StallError (TimeoutError)            no frame within stall_timeout
    ├── ModelError (ValueError)                  a model cannot be loaded or called
    │   ├── ModelNotFoundError (FileNotFoundError)
    │   ├── TensorNameError (KeyError)           a name the model does not have
    │   └── ModelPullError (RuntimeError)        fetching/converting the default model failed
    ├── OutputError (OSError)                    an output cannot be written
    ├── ConfigError (ValueError)                 a pipeline file or option is invalid
    ├── StageError (RuntimeError)                a stage raised; wraps the original as __cause__
    └── Cancelled                                the run was stopped (Ctrl-C / stop())
        └── ShutdownTimeout (TimeoutError)       ... and a stage stuck in a call did not stop

Errors carry context (``stage``, ``frame``, ``source``) so the CLI can print one useful line.
An error a setting can fix names that setting as the API spells it (``param="max_pixels"``);
the message then ends with ``(see max_pixels)``, and the command line shows its own flag
instead (``(see --max-pixels)``): the library never names a flag.

>>> str(FrameTooLargeError("x.mp4: frame size 9000x9000 is too large", param="max_pixels"))
'x.mp4: frame size 9000x9000 is too large (see max_pixels)'
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
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.frame = frame
        self.source = source
        self.param = param  # the API parameter that would change the outcome

    def __str__(self) -> str:
        return self.message + (f" (see {self.param})" if self.param else "")


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
        return VidstreamError.__str__(self)


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


class ShutdownTimeout(Cancelled, TimeoutError):
    """A stage did not stop within the shutdown deadline (stuck in a model or network call).

    Its thread is left running as a daemon; ``stage`` names it.
    """
