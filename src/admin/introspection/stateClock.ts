/**
 * When each actor started and entered its current state ("time in the current state", seed 000's
 * "connection start" for outgoing streams), kept from the registry's inspection events so the
 * machines stay free of timestamps. The same record gives the metrics their transitions and state
 * durations (onTransition): one record per actor rather than one per observer (issue 9: an idle
 * link's memory).
 */
import type { InspectionEvent, StateValue } from "xstate";
import { flattenState } from "../../../machines/stateLabel.js";

export interface ActorClock {
  /** Milliseconds since the epoch. */
  startedAt: number;
  /** When the current state was entered (ms since the epoch). */
  since: number;
  state: string;
}

/** Per actor; times on the monotonic clock (performance.now()). */
interface Tracked {
  state: string;
  since: number;
  readonly startedAt: number;
}

/** A state change: the state left, the state entered, and the seconds spent in the former. */
export type TransitionListener = (
  event: Extract<InspectionEvent, { type: "@xstate.snapshot" }>,
  from: string,
  to: string,
  seconds: number,
) => void;

export class StateClock {
  private readonly clocks = new WeakMap<object, Tracked>();
  private readonly listeners: TransitionListener[] = [];

  constructor(
    private readonly now: () => number = () => performance.now(),
    /** What `now()` reads at the epoch's time 0 (for the times `of` returns). */
    private readonly origin: number = performance.timeOrigin,
  ) {}

  onTransition(listener: TransitionListener): void {
    this.listeners.push(listener);
  }

  readonly observe = (event: InspectionEvent): void => {
    if (event.type !== "@xstate.snapshot") return;
    const value = (event.snapshot as { value?: StateValue }).value;
    if (value === undefined) return;
    const state = flattenState(value);
    const clock = this.clocks.get(event.actorRef);
    if (clock === undefined) {
      const now = this.now();
      this.clocks.set(event.actorRef, { state, since: now, startedAt: now });
      return;
    }
    if (clock.state === state) return;
    const now = this.now();
    const from = clock.state;
    const seconds = (now - clock.since) / 1000;
    clock.state = state;
    clock.since = now;
    for (const listener of this.listeners) listener(event, from, state, seconds);
  };

  of(actor: object): ActorClock | undefined {
    const clock = this.clocks.get(actor);
    if (clock === undefined) return undefined;
    return {
      startedAt: Math.round(this.origin + clock.startedAt),
      since: Math.round(this.origin + clock.since),
      state: clock.state,
    };
  }
}
