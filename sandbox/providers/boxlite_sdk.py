"""The boxlite-sdk provider: BoxLite micro-VMs through the optional `boxlite` Python package."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any

from sandbox.providers.base import (
    BoxInfo,
    BoxNotFound,
    BoxSpec,
    BoxState,
    SandboxError,
    SandboxUnavailable,
    TailLogsMixin,
    ensure_dir,
    map_state,
    parse_timestamp,
)

if TYPE_CHECKING:
    from core.config import SandboxConfig

MISSING_PACKAGE_MESSAGE = 'boxlite-sdk: python package "boxlite" is not installed (pip install boxlite)'
ROOTFS_IMAGE_PREFIX = "rootfs:"
BOXLITE_STATES: dict[str, BoxState] = {
    "configured": "created",
    "created": "created",
    "running": "running",
    "stopping": "unknown",
    "stopped": "stopped",
}
NOT_FOUND_MARKERS = ("no such box", "not found")


def import_boxlite() -> ModuleType:
    """Imported on first use only: the package is an optional extra and needs KVM or Hypervisor.framework."""
    try:
        return importlib.import_module("boxlite")
    except ImportError as error:
        raise SandboxUnavailable(MISSING_PACKAGE_MESSAGE) from error


def error_text(error: BaseException) -> str:
    """The exception's message, or its type when it has none, so a wrapped text never ends in ": "."""
    return str(error) or type(error).__name__


def is_sdk_failure(error: BaseException) -> bool:
    """Whether an exception out of the SDK is a failure to report rather than a signal to let through.

    PyO3 raises a Rust panic as pyo3_runtime.PanicException, which derives from BaseException so that
    `except Exception` misses it, and the class cannot be imported to name it. KeyboardInterrupt,
    SystemExit and task cancellation still pass.
    """
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"


@contextmanager
def sdk_failures(wrap: Callable[[BaseException], SandboxError]) -> Iterator[None]:
    """Whatever the SDK (third-party code) raises becomes `wrap(error)`; sandbox.md §2 allows no other."""
    try:
        yield
    except SandboxError:
        raise
    except BaseException as error:
        if not is_sdk_failure(error):
            raise
        raise wrap(error) from error


def open_failure(error: BaseException) -> SandboxError:
    return SandboxUnavailable(f"boxlite-sdk: open runtime: {error_text(error)}")


def wrap_error(op: str, error: BaseException) -> SandboxError:
    message = f"{op}: {error_text(error)}"
    if any(marker in str(error).lower() for marker in NOT_FOUND_MARKERS):
        return BoxNotFound(message)
    return SandboxError(message)


def sdk_operation(op: str) -> AbstractContextManager[None]:
    """SDK failures as `<op>: <error>`, BoxNotFound when the SDK says the box does not exist."""
    return sdk_failures(lambda error: wrap_error(op, error))


def rootfs_directory(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise SandboxError(f'invalid sandbox image: rootfs path "{path}" is not accessible') from error
    if not stat.S_ISDIR(mode):
        raise SandboxError(f'invalid sandbox image: rootfs path "{path}" is not a directory')
    return path


class BoxliteSdkProvider:
    name = "boxlite-sdk"

    def __init__(self, sandbox_config: SandboxConfig) -> None:
        self.registries = list(sandbox_config.debian_registries)

    def open(self, home_dir: Path) -> BoxliteSdkRuntime:
        # Importing runs the package's own code, which can fail in more ways than "not installed"; that, the
        # home on disk or the SDK's options failing all mean the runtime cannot open.
        with sdk_failures(open_failure):
            boxlite = import_boxlite()
            ensure_dir(Path(home_dir))
            # Older releases take plain host strings; newer ones an ImageRegistry per host.
            if hasattr(boxlite, "ImageRegistry"):
                registries: list[Any] = [boxlite.ImageRegistry(host=host) for host in self.registries]
            else:
                registries = list(self.registries)
            options = boxlite.Options(home_dir=str(home_dir), image_registries=registries)
        # The package is async-first: its methods look up the running loop when called, not when awaited.
        # A private loop per opened runtime keeps them off the server's loop.
        loop = asyncio.new_event_loop()
        try:
            with sdk_failures(open_failure):
                runtime = in_loop(loop, boxlite.Boxlite, options)
        except BaseException:
            loop.close()
            raise
        return BoxliteSdkRuntime(boxlite, runtime, loop)


def in_loop(loop: asyncio.AbstractEventLoop, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`function(*args, **kwargs)` called while `loop` runs, and awaited there when it returns an awaitable.

    The SDK raises "no running event loop" for a call made outside a running loop, even though the
    awaitable it returns would later be awaited on one.
    """
    return loop.run_until_complete(_called(function, args, kwargs))


async def _called(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return await _maybe_await(function(*args, **kwargs))


class BoxliteSdkRuntime:
    def __init__(self, boxlite: ModuleType, runtime: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.boxlite = boxlite
        self.runtime = runtime
        self.loop = loop

    def call(self, op: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with sdk_operation(op):
            return in_loop(self.loop, function, *args, **kwargs)

    def create(self, spec: BoxSpec) -> BoxliteSdkBox:
        options = self.box_options(spec)
        handle = self.call("create boxlite box", self.runtime.create, options, name=spec.name)
        box = BoxliteSdkBox(self, handle)
        try:
            box.start()
        except SandboxError:
            box.close()
            raise
        return box

    def box_options(self, spec: BoxSpec) -> Any:
        if spec.entrypoint:
            raise SandboxError("unsupported sandbox option: entrypoint")
        options: dict[str, Any] = {
            "env": list(spec.env.items()),
            "detach": spec.detach,
            "auto_remove": spec.auto_remove,
            "cmd": list(spec.cmd),
        }
        if spec.image.startswith(ROOTFS_IMAGE_PREFIX):
            options["rootfs_path"] = rootfs_directory(spec.image.removeprefix(ROOTFS_IMAGE_PREFIX))
        elif spec.image.strip():
            options["image"] = spec.image
        else:
            raise SandboxError("invalid sandbox image: image is required")
        volumes = [(mount.host_path, mount.guest_path, mount.read_only) for mount in spec.mounts]
        with sdk_operation("create boxlite box"):
            try:
                return self.boxlite.BoxOptions(**options, volumes=volumes)
            except TypeError:
                # Some releases spell the access mode "ro"/"rw" instead of a read-only flag.
                volumes = [(host, guest, "ro" if read_only else "rw") for host, guest, read_only in volumes]
            return self.boxlite.BoxOptions(**options, volumes=volumes)

    def get(self, id_or_name: str) -> BoxliteSdkBox:
        handle = self.call("get boxlite box", self.runtime.get, id_or_name)
        if handle is None:
            raise BoxNotFound(f"get boxlite box: sandbox not found: {id_or_name}")
        return BoxliteSdkBox(self, handle)

    def remove(self, id_or_name: str, *, force: bool = False) -> None:
        self.call("remove boxlite box", self.runtime.remove, id_or_name, force=force)

    def close(self) -> None:
        """Closes the private loop and lets go of the SDK runtime, which releases its lock on the home
        directory (one runtime per directory at a time); the boxes keep running."""
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        self.runtime = None


def box_status(info: Any) -> Any:
    """`info.state.status` (the documented shape), or `info.status`; enum members give their value."""
    state = getattr(info, "state", None)
    status = getattr(state, "status", None) if state is not None else getattr(info, "status", None)
    if status is None or isinstance(status, str):
        return status
    return getattr(status, "value", None) or getattr(status, "name", None)


def created_time(value: Any) -> datetime | None:
    """The creation time as an aware datetime; like an unparsable text, an out-of-range number → None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_timestamp(value)


class BoxliteSdkBox(TailLogsMixin):
    def __init__(self, runtime: BoxliteSdkRuntime, handle: Any) -> None:
        self.runtime = runtime
        self.handle = handle

    def start(self) -> None:
        self.runtime.call("start boxlite box", self.handle.start)

    def stop(self, *, force: bool = False, timeout: float | None = None) -> None:
        if force:
            raise SandboxError("unsupported sandbox option: force stop")
        if timeout is not None:
            raise SandboxError("unsupported sandbox option: stop timeout")
        self.runtime.call("stop boxlite box", self.handle.stop)

    def info(self) -> BoxInfo:
        op = "inspect boxlite box"
        info = self.runtime.call(op, self.handle.info)
        # The fields are SDK objects too (PyO3 getters run Rust code), so reading them can fail like a call.
        with sdk_operation(op):
            return BoxInfo(
                id=str(getattr(info, "id", "") or ""),
                name=str(getattr(info, "name", "") or ""),
                state=map_state(box_status(info), BOXLITE_STATES),
                created_at=created_time(getattr(info, "created_at", None)),
            )

    def exec(
        self, argv: list[str], *, stdout: IO[bytes], stderr: IO[bytes], timeout: float | None = None
    ) -> int:
        if not argv:
            raise SandboxError("invalid sandbox command: argv is empty")
        op = "exec boxlite box"
        command = self._exec(argv, stdout, stderr)
        if timeout is not None:
            command = asyncio.wait_for(command, timeout)
        with sdk_operation(op):
            try:
                return self.runtime.loop.run_until_complete(command)
            except TimeoutError as error:
                if timeout is None:
                    raise  # the SDK's own timeout, not ours: wrapped like any other failure
                raise SandboxError(f"{op}: timed out after {timeout:g} s") from error

    async def _exec(self, argv: list[str], stdout: IO[bytes], stderr: IO[bytes]) -> int:
        execution = await _maybe_await(self.handle.exec(argv[0], args=argv[1:]))
        # Drain both streams together so a chatty stderr cannot stall stdout.
        await asyncio.gather(_copy_lines(execution.stdout(), stdout), _copy_lines(execution.stderr(), stderr))
        result = await _maybe_await(execution.wait())
        return int(result.exit_code)

    def close(self) -> None:
        """Drops this handle; the box keeps running."""
        self.handle = None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _copy_lines(stream: Any, writer: IO[bytes]) -> None:
    if stream is None:
        return
    if hasattr(stream, "__aiter__"):
        async for line in stream:
            _write_line(writer, line)
    else:
        for line in stream:
            _write_line(writer, line)


def _write_line(writer: IO[bytes], line: str | bytes) -> None:
    data = line.encode("utf-8") if isinstance(line, str) else bytes(line)
    writer.write(data if data.endswith(b"\n") else data + b"\n")
