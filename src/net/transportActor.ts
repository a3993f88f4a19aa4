/**
 * The `transport` actor the stream machines invoke: a callback actor that looks its connection up
 * by id (sockets stay out of machine context, ARCHITECTURE.md "Context vs outside"), forwards the
 * machine's commands to it and its events to the machine, and tears it down when the machine stops.
 */
import { fromCallback } from "xstate";
import type { TransportCommand, TransportEvent } from "../../machines/events.js";
import type { XmppTransport } from "./transport.js";

export type TransportTable = Map<string, XmppTransport>;

export function transportActor(transports: TransportTable) {
  return fromCallback<TransportCommand, { connectionId: string }>(({ input, sendBack, receive }) => {
    const transport = transports.get(input.connectionId);
    if (!transport) throw new Error(`no transport ${input.connectionId}`);
    transport.attach((event: TransportEvent) => {
      sendBack(event);
    });
    receive((command) => {
      transport.command(command);
    });
    return () => {
      transports.delete(input.connectionId);
      transport.destroy();
    };
  });
}
