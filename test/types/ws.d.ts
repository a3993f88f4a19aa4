// The part of `ws` (a dependency of @statelyai/inspect) that the inspector test uses.
declare module "ws" {
  import type { EventEmitter } from "node:events";
  export default class WebSocket extends EventEmitter {
    constructor(url: string);
    close(): void;
  }
}
