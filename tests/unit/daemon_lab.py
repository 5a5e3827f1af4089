"""Two pyiked daemons negotiating on loopback in-process (the demo's configuration), each
with a control socket, on an event loop in a thread. Tests talk to them through their
control sockets as pyikectl does, and look at daemon state with `on_loop`."""

import asyncio
import os
import threading
import time

from pyiked.config import parse_config_text
from pyiked.daemon import demo
from pyiked.daemon.control import ControlServer
from pyiked.daemon.run import Daemon


class Lab:
    """A responder and an initiator (pyiked's demo configuration) on an event loop in a
    thread; tests talk to them through their control sockets like pyikectl does."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        ike, natt = demo._free_ports()
        self.responder_conf = tmp_path / "responder.conf"
        self.responder_conf.write_text(demo.RESPONDER_CONF)
        os.chmod(self.responder_conf, 0o600)

        def make(text, name, address, conf_file=None):
            config, _ = parse_config_text(text, name)
            return Daemon(config, ike_port=ike, natt_port=natt, families=(4,), bind_address=address,
                          config_file=conf_file)

        self.responder = make(demo.RESPONDER_CONF, "responder.conf", demo.RESPONDER,
                              str(self.responder_conf))
        self.initiator = make(demo.INITIATOR_CONF, "initiator.conf", demo.INITIATOR)
        self.r_sock, self.i_sock = str(tmp_path / "r.sock"), str(tmp_path / "i.sock")
        self.controls = []

        async def start():
            for daemon, path in ((self.responder, self.r_sock), (self.initiator, self.i_sock)):
                server = ControlServer(daemon, path)
                await server.start()
                self.controls.append(server)
            self.responder.start(asyncio.get_running_loop())
            self.initiator.start(asyncio.get_running_loop())

        self.call(start())

    def call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on_loop(self, fn):
        async def run():
            return fn()
        return self.call(run())

    def established(self, daemon) -> int:
        return self.on_loop(lambda: sum(sa.state.value == "ESTABLISHED" and bool(sa.children)
                                        for sa in daemon.engine.ike_sas()))

    def wait(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError("condition not reached")

    def close(self):
        def stop():
            for server in self.controls:
                server.close()
            self.responder.close()
            self.initiator.close()
        self.on_loop(stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
