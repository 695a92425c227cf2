"""Serving a WSGI app with waitress, in one process or in several sharing one port.

One Python process runs Python code on one core at a time, however many threads it has, so a
single process leaves the other cores idle while requests queue. With ``workers`` > 1 that many
processes are forked, each with a listening socket of its own on the one port
(``SO_REUSEPORT``): the kernel then spreads new connections evenly over them. (On one shared
socket, whichever process happens to be waiting takes a burst of new connections, and a
keep-alive connection stays where it landed: under load one worker was seen holding 30 of 32
connections while the other idled.) Each worker builds its own app after the fork (its own
database connections, group commit and threads), so nothing but the port is shared. On
systems other than Linux, whose ``SO_REUSEPORT`` does not spread connections, the workers share
one socket.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable

from waitress import serve as waitress_serve

WAITRESS = {"channel_timeout": 30}


def serve(make_app: Callable[[int], object], host: str, port: int, threads: int,
          workers: int = 1, ident: str | None = None,
          bound: Callable[[int], None] | None = None) -> None:
    """Serve ``make_app(worker_number)`` on ``host:port`` with ``threads`` threads in each of
    ``workers`` processes; returns when the server stops (SIGTERM or Ctrl-C). ``bound`` is
    told the port once it is taken (the one chosen, for port 0)."""
    # Waitress warns once for every request that waits for a thread: under load that is a line
    # per request, written by the one thread that reads and writes every connection.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    options = {**WAITRESS, "threads": threads, **({"ident": ident} if ident else {})}
    listeners = _listeners(host, port, workers)
    if bound is not None:
        bound(listeners[0].getsockname()[1])
    if workers <= 1:
        waitress_serve(make_app(0), sockets=listeners, **options)
        return
    children = []
    for number in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own app on its socket, until it is told to stop
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                mine = listeners[number % len(listeners)]
                for other in listeners:
                    if other is not mine:
                        other.close()
                waitress_serve(make_app(number), sockets=[mine], **options)
            except KeyboardInterrupt:
                pass
            except BaseException:  # reported here; the parent then stops the others
                sys.excepthook(*sys.exc_info())
                code = 1
            finally:
                os._exit(code)
        children.append(pid)
    for listener in listeners:
        listener.close()
    _supervise(children)


def _listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on ``host:port`` (port 0: one free port for all) where the
    kernel spreads connections over them (Linux), else a single one to share. A port in use
    is refused as before, though sockets with ``SO_REUSEPORT`` could join each other: a second
    server on the port would otherwise take half of the first one's connections."""
    taken = socket.create_server((host, port), backlog=1024)  # "address in use", if it is
    if count <= 1 or not sys.platform.startswith("linux"):
        return [taken]
    port = taken.getsockname()[1]
    taken.close()
    listeners: list[socket.socket] = []
    try:
        for _ in range(count):
            listeners.append(socket.create_server((host, port), backlog=1024, reuse_port=True))
    except OSError:  # SO_REUSEPORT refused: one shared socket after all
        for listener in listeners:
            listener.close()
        return [socket.create_server((host, port), backlog=1024)]
    return listeners


def _supervise(children: list[int]) -> None:
    """Wait until a worker ends or the parent is told to stop, then stop them all (a worker that
    ended by itself makes the server exit with an error)."""
    def stop(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        pid, _status = os.wait()
        raise SystemExit(f"worker process {pid} stopped; stopping the others")
    except KeyboardInterrupt:
        pass
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
