"""A slixmpp client (Debian's python3-slixmpp) that logs in and runs disco and ad-hoc operations.

Usage: slixmpp_disco_browse.py JID PASSWORD HOST PORT < OPERATIONS.json

OPERATIONS is a JSON array of objects, each one of:
  {"op": "disco_info", "jid": J, "node": N?}       XEP-0030 disco#info
  {"op": "disco_items", "jid": J, "node": N?}      XEP-0030 disco#items
  {"op": "command_list", "jid": J}                 XEP-0050 disco#items on the commands node
  {"op": "command_execute", "jid": J, "node": N, "values": {VAR: VALUE or [VALUES]}, "action": A?}
      XEP-0050: execute, read the returned form, submit it with `values` (the form's other fields
      keep their values), return both stages. `action` is the submission's action (default: the
      <actions execute=...> attribute, else "complete").
  {"op": "sleep", "seconds": S}

Connects without TLS (the test Prosody offers none), runs the operations in order and prints one
JSON document: {"results": [RESULT, ...]}, one RESULT per operation; an error reply is the result
{"error": {"type", "condition", "text"}} rather than an exception. A failed login prints
{"login_error": TEXT} and exits 1.
"""
import asyncio
import json
import sys
import xml.etree.ElementTree as ET

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
COMMANDS = "http://jabber.org/protocol/commands"
DATA = "jabber:x:data"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
TIMEOUT = 20


def q(ns, name):
    return "{%s}%s" % (ns, name)


def form_json(x):
    """A jabber:x:data form as JSON: type, title, instructions, fields with every value."""
    fields = []
    for f in x.findall(q(DATA, "field")):
        fields.append(
            {
                "var": f.get("var"),
                "type": f.get("type"),
                "label": f.get("label"),
                "values": [v.text or "" for v in f.findall(q(DATA, "value"))],
                "options": [
                    {"label": o.get("label"), "value": (o.findtext(q(DATA, "value")) or "")}
                    for o in f.findall(q(DATA, "option"))
                ],
            }
        )
    return {
        "type": x.get("type"),
        "title": x.findtext(q(DATA, "title")),
        "instructions": [i.text or "" for i in x.findall(q(DATA, "instructions"))],
        "fields": fields,
    }


def error_json(iq):
    err = iq.xml.find("{jabber:client}error")
    if err is None:
        return {"type": None, "condition": None, "text": None}
    condition = None
    text = None
    for child in err:
        if child.tag == q(STANZAS, "text"):
            text = child.text
        elif child.tag.startswith("{%s}" % STANZAS):
            condition = child.tag.split("}", 1)[1]
    return {"type": err.get("type"), "condition": condition, "text": text}


def command_json(iq):
    cmd = iq.xml.find(q(COMMANDS, "command"))
    if cmd is None:
        return {"status": None, "sessionid": None, "actions": None, "notes": [], "form": None}
    actions = cmd.find(q(COMMANDS, "actions"))
    x = cmd.find(q(DATA, "x"))
    return {
        "status": cmd.get("status"),
        "sessionid": cmd.get("sessionid"),
        "actions": None
        if actions is None
        else {"execute": actions.get("execute"), "allowed": [a.tag.split("}", 1)[1] for a in actions]},
        "notes": [{"type": n.get("type", "info"), "text": n.text or ""} for n in cmd.findall(q(COMMANDS, "note"))],
        "form": None if x is None else form_json(x),
    }


class Browser(ClientXMPP):
    def __init__(self, jid, password, operations):
        super().__init__(jid, password)
        self.operations = operations
        self.output = None
        self["feature_mechanisms"].unencrypted_plain = True
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("disconnected", lambda _event: self.loop.stop())

    def on_failed_auth(self, _event):
        self.output = {"login_error": "authentication failed"}
        self.disconnect()

    def on_connection_failed(self, event):
        self.output = {"login_error": "connection failed: %s" % (event,)}
        self.loop.stop()

    async def query(self, ns, jid, node):
        iq = self.make_iq_get(ito=jid)
        query = ET.Element(q(ns, "query"))
        if node:
            query.set("node", node)
        iq.xml.append(query)
        return await iq.send(timeout=TIMEOUT)

    async def disco_info(self, op):
        reply = await self.query(DISCO_INFO, op["jid"], op.get("node"))
        query = reply.xml.find(q(DISCO_INFO, "query"))
        if query is None:
            return {"identities": [], "features": [], "forms": []}
        return {
            "identities": [
                {"category": i.get("category"), "type": i.get("type"), "name": i.get("name")}
                for i in query.findall(q(DISCO_INFO, "identity"))
            ],
            "features": [f.get("var") for f in query.findall(q(DISCO_INFO, "feature"))],
            "forms": [form_json(x) for x in query.findall(q(DATA, "x"))],
        }

    async def disco_items(self, op):
        reply = await self.query(DISCO_ITEMS, op["jid"], op.get("node"))
        query = reply.xml.find(q(DISCO_ITEMS, "query"))
        items = [] if query is None else query.findall(q(DISCO_ITEMS, "item"))
        return {"items": [{"jid": i.get("jid"), "node": i.get("node"), "name": i.get("name")} for i in items]}

    async def command_list(self, op):
        return await self.disco_items({"jid": op["jid"], "node": COMMANDS})

    async def command_execute(self, op):
        first = command_json(await self.command(op["jid"], op["node"], "execute"))
        result = {"first": first, "final": None}
        if first["status"] != "executing":
            return result
        values = op.get("values", {})
        x = ET.Element(q(DATA, "x"), {"type": "submit"})
        submitted = set()
        for field in (first["form"] or {"fields": []})["fields"]:
            var = field["var"]
            if var is None or field["type"] == "fixed":
                continue
            submitted.add(var)
            self.add_field(x, var, values.get(var, field["values"]))
        for var, value in values.items():
            if var not in submitted:
                self.add_field(x, var, value)
        actions = first["actions"] or {}
        action = op.get("action") or actions.get("execute") or "complete"
        try:
            reply = await self.command(op["jid"], op["node"], action, first["sessionid"], x)
            result["final"] = command_json(reply)
        except IqError as e:
            result["final"] = {"error": error_json(e.iq)}
        return result

    @staticmethod
    def add_field(x, var, value):
        field = ET.SubElement(x, q(DATA, "field"), {"var": var})
        for v in value if isinstance(value, list) else [value]:
            ET.SubElement(field, q(DATA, "value")).text = str(v)

    async def command(self, jid, node, action, sessionid=None, form=None):
        iq = self.make_iq_set(ito=jid)
        cmd = ET.Element(q(COMMANDS, "command"), {"node": node, "action": action})
        if sessionid:
            cmd.set("sessionid", sessionid)
        if form is not None:
            cmd.append(form)
        iq.xml.append(cmd)
        return await iq.send(timeout=TIMEOUT)

    async def run(self, op):
        kind = op.get("op")
        if kind == "sleep":
            await asyncio.sleep(float(op.get("seconds", 1)))
            return {"slept": op.get("seconds", 1)}
        handler = {
            "disco_info": self.disco_info,
            "disco_items": self.disco_items,
            "command_list": self.command_list,
            "command_execute": self.command_execute,
        }.get(kind)
        if handler is None:
            return {"error": {"type": "client", "condition": "unknown-operation", "text": str(kind)}}
        try:
            return await handler(op)
        except IqError as e:
            return {"error": error_json(e.iq)}
        except IqTimeout:
            return {"error": {"type": "timeout", "condition": None, "text": "no reply in %d s" % TIMEOUT}}

    async def on_start(self, _event):
        results = []
        for op in self.operations:
            results.append(await self.run(op))
        self.output = {"results": results}
        self.disconnect()


def main():
    jid, password, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    operations = json.load(sys.stdin)
    client = Browser(jid, password, operations)
    client.connect(address=(host, port), use_ssl=False, force_starttls=False, disable_starttls=True)
    client.loop.run_forever()
    print(json.dumps(client.output if client.output is not None else {"login_error": "disconnected"}))
    sys.exit(0 if client.output is not None and "results" in client.output else 1)


if __name__ == "__main__":
    main()
