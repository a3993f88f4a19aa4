/**
 * Ending a stream, shared by every stream machine: remember why (context.closeReason, for logs and
 * metrics), say it in the log, and have the transport send the stream error (if any) and
 * `</stream:stream>`. One action instead of three at every place a stream can end.
 */
import { enqueueActions, type EventObject } from "xstate";
import type { LogEmitted, TransportCommand } from "./events.js";
import type { StreamErrorCondition } from "../src/xmpp/streamErrors.js";

export interface EndStreamParams {
  /** The stream error to send; none for an orderly close. */
  condition?: StreamErrorCondition;
  /** `<text/>` of the stream error, for the peer. */
  text?: string;
  /** Detail for our log only (defaults to `text`). */
  detail?: string;
}

export interface ClosableContext {
  closeReason?: string;
}

/** Orderly ends are info, timeouts and conflicts notice, a peer breaking the protocol a warning. */
function levelOf(condition: StreamErrorCondition | undefined): LogEmitted["level"] {
  if (condition === undefined || condition === "system-shutdown") return "info";
  if (condition === "connection-timeout" || condition === "conflict") return "notice";
  return "warning";
}

export function endStream<TContext extends ClosableContext, TEvent extends EventObject>() {
  return enqueueActions<TContext, TEvent, EndStreamParams, TEvent, never, never, never, never, LogEmitted>(
    ({ enqueue }, params) => {
      enqueue.assign({ closeReason: params.condition ?? "closed" } as Partial<TContext>);
      const detail = params.detail ?? params.text;
      enqueue.emit({
        type: "log",
        level: levelOf(params.condition),
        message:
          params.condition === undefined
            ? "stream closed"
            : `stream error <${params.condition}/>${detail === undefined ? "" : `: ${detail}`}`,
      });
      const command: TransportCommand = {
        type: "CLOSE_STREAM",
        ...(params.condition === undefined
          ? {}
          : {
              error: {
                condition: params.condition,
                ...(params.text === undefined ? {} : { text: params.text }),
              },
            }),
      };
      enqueue.sendTo("transport", command);
    },
  );
}
