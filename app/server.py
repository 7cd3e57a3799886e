"""The service at the socket: uvicorn's server and httptools protocol, with admission's
refusals answered in the callback that parsed the request's head, and a burst's connections
accepted as soon as the loop can.

**Refusals where the request is read.** Through the ASGI stack a refusal costs a task, every
middleware layer and two writes, and it waits for the tasks scheduled before it: in a burst,
the refusals at its end queue behind the handling of everything that arrived first. Here
admission (``admit_early``, the same decision ``Admission`` takes for servers without this
protocol) is asked as soon as the head is parsed; a refusal is written at once, in one
write, with the bytes the ASGI path would send (the error writer's status, headers and body
after uvicorn's default headers), and the request never becomes a task. An admitted request
holds its reservation in its scope, so ``Admission`` does not ask again, and its task starts
in a turn of the loop with room for it (the app's ``Turns``): in a burst, the requests
admitted first do not run even the first layers of the ASGI stack before the rest of the
burst is read. While the connection's writes are paused, or if the decision itself fails,
the request takes the ASGI path, whose error guard answers what goes wrong.

**Every waiting connection accepted at once.** libuv (uvloop's core) accepts one
connection each time it polls the listening socket (libuv/libuv#3696). While the loop's
turns are short that is enough; when a burst's admitted requests make each turn a few
milliseconds long, the rest of the burst waited in the kernel's accept queue, one
connection a turn: 60-150 ms for the last of 200 in some bursts. Here, whenever a
connection is made, every connection waiting in the queue is accepted too (``Server``,
through a non-blocking copy of the listening socket); when none waits that costs one
``accept`` answered at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from functools import partial

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from app.errors import ServiceError, error_response
from app.main import create_app
from app.middleware import admit_early
from app.settings import Settings

log = logging.getLogger("app")


def refusing_protocol(state) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol that asks admission of the app whose ``state`` is given."""

    class RefusingProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            accept = getattr(state, "accept_waiting", None)
            if accept is not None:  # a connection came: the rest of a burst may be queued
                accept()

        def _start_asgi_task(self, cycle, app) -> None:
            begin = partial(super()._start_asgi_task, cycle, app)
            if self.flow.write_paused or cycle.disconnected:
                return begin()
            try:
                admitted = admit_early(state, cycle.scope)
            except ServiceError as error:
                return self._refuse(cycle, error)
            except Exception:  # the ASGI path asks again, under the error guard
                log.debug("admission at the socket failed", exc_info=True)
                return begin()
            if admitted is None:
                return begin()
            state.turns.start(begin)

        def _refuse(self, cycle, error: ServiceError) -> None:
            response = error_response(error)
            head = [STATUS_LINE[response.status_code]]
            for name, value in [*cycle.default_headers, *response.raw_headers]:
                head += [name.lower(), b": ", value, b"\r\n"]
            if not cycle.keep_alive:  # an HTTP/1.0 client, or one that asked to close
                head.append(b"connection: close\r\n")
            cycle.response_started = cycle.response_complete = True
            self.transport.write(b"".join(head) + b"\r\n" + response.body)
            if cycle.access_log:
                cycle.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(cycle.scope),
                                         cycle.scope["method"],
                                         get_path_with_query_string(cycle.scope),
                                         cycle.scope["http_version"], response.status_code)
            cycle.message_event.set()
            if not cycle.keep_alive:
                self.transport.close()
            cycle.on_response()

    return RefusingProtocol


class Server(uvicorn.Server):
    """uvicorn's server, accepting every waiting connection whenever one is made (module
    docstring; ``app.state.accept_waiting``, called by the protocol); and once SIGTERM's
    graceful shutdown has answered every accepted request, the process exits 0: uvicorn
    re-raises the signal after its shutdown, and the exit status 143 reads as a failure to
    init systems and orchestrators, though nothing was lost."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._listeners: list[socket.socket] = []  # non-blocking copies of the listening sockets
        self._accepting: set[asyncio.Task] = set()  # connections being handed to the loop

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.config.ssl is not None:
            return  # a connection accepted here would skip the TLS handshake
        for server in self.servers:
            for listening in server.sockets or ():
                copy = socket.socket(fileno=os.dup(listening.fileno()))
                copy.setblocking(False)
                self._listeners.append(copy)
        factory = partial(self.config.http_protocol_class, config=self.config,
                          server_state=self.server_state, app_state=self.lifespan.state)
        self.config.app.state.accept_waiting = partial(accept_waiting, self._listeners, factory,
                                                       self._accepting)

    async def shutdown(self, sockets=None) -> None:
        self.config.app.state.accept_waiting = None
        for listening in self._listeners:
            listening.close()
        await super().shutdown(sockets)
        self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def accept_waiting(listeners: list[socket.socket], factory, tasks: set[asyncio.Task]) -> int:
    """Accept every connection waiting on ``listeners`` (non-blocking) and hand each to the
    running loop with a protocol from ``factory``, as its server would; returns how many."""
    loop, accepted = asyncio.get_running_loop(), 0
    for listening in listeners:
        while True:
            try:
                connection, _ = listening.accept()
            except OSError:  # nothing waiting (or a connection reset while waiting)
                break
            connection.setblocking(False)
            task = loop.create_task(loop.connect_accepted_socket(factory, connection))
            tasks.add(task)
            task.add_done_callback(_accepted)
            task.add_done_callback(tasks.discard)
            accepted += 1
    return accepted


def _accepted(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("an accepted connection failed to open", exc_info=task.exception())


def server_config(settings: Settings, **options) -> uvicorn.Config:
    """uvicorn's configuration of the service (``ltp serve`` and the tests' servers): the app
    built from ``settings``, served on the refusing protocol; ``options`` override uvicorn's."""
    app = create_app(settings)
    return uvicorn.Config(app, **(settings.server_options() | {"http": refusing_protocol(app.state)}
                                  | options))
