"""An XEP-0114 component written with slixmpp (Debian's python3-slixmpp) that echoes messages.

Usage: slixmpp_echo_component.py DOMAIN SECRET HOST PORT
Prints READY once the handshake succeeded; answers every chat/normal message with "echo: BODY".
"""
import sys

from slixmpp.componentxmpp import ComponentXMPP


class EchoComponent(ComponentXMPP):
    def __init__(self, jid, secret, host, port):
        super().__init__(jid, secret, host, port)
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("disconnected", lambda _event: self.loop.stop())

    def on_start(self, _event):
        print("READY", flush=True)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            msg.reply("echo: %s" % msg["body"]).send()


def main():
    domain, secret, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    component = EchoComponent(domain, secret, host, port)
    component.register_plugin("xep_0030")
    component.register_plugin("xep_0199")
    component.connect()
    component.loop.run_forever()


if __name__ == "__main__":
    main()
