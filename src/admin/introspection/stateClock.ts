/**
 * When each actor started and entered its current state ("time in the current state", seed 000's
 * "connection start" for outgoing streams), kept from the registry's inspection events so the
 * machines stay free of timestamps.
 */
import type { InspectionEvent, StateValue } from "xstate";
import { flattenState } from "../../../machines/stateLabel.js";

export interface ActorClock {
  startedAt: number;
  /** When the current state was entered. */
  since: number;
  state: string;
}

export class StateClock {
  private readonly clocks = new WeakMap<object, ActorClock>();

  constructor(private readonly now: () => number = Date.now) {}

  readonly observe = (event: InspectionEvent): void => {
    if (event.type !== "@xstate.snapshot") return;
    const value = (event.snapshot as { value?: StateValue }).value;
    if (value === undefined) return;
    const state = flattenState(value);
    const clock = this.clocks.get(event.actorRef);
    if (clock === undefined) {
      const now = this.now();
      this.clocks.set(event.actorRef, { startedAt: now, since: now, state });
    } else if (clock.state !== state) {
      clock.state = state;
      clock.since = this.now();
    }
  };

  of(actor: object): ActorClock | undefined {
    return this.clocks.get(actor);
  }
}
