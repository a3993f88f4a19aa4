// smol-toml returns values without positions, so errors could not name a line. This scanner reads
// the TOML text only for its structure (headers, keys, array elements, inline tables) and records the
// line where each option path is defined. It never throws: on input it does not understand it gives
// up on that statement and the lookup falls back to the nearest enclosing table.

export type PathSegment = string | number;

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** `listen.s2s[1].tls.certfile`; keys that are not bare TOML keys are quoted: `access."a.b"`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") {
      out += `[${segment}]`;
    } else {
      const key = BARE_KEY.test(segment) ? segment : JSON.stringify(segment);
      out += out === "" ? key : `.${key}`;
    }
  }
  return out;
}

export class TomlLocator {
  private readonly lines = new Map<string, number>();
  private readonly explicit = new Set<string>();
  /** Array-of-tables paths (as formatted) → how many `[[…]]` headers defined elements so far. */
  private readonly arrays = new Map<string, number>();
  private table: PathSegment[] = [];
  private pos = 0;
  private lineNo = 1;

  constructor(private readonly src: string) {
    this.scanDocument();
  }

  /** Line where exactly this path is defined, if it is. */
  exactLine(path: readonly PathSegment[]): number | undefined {
    return this.lines.get(formatPath(path));
  }

  /** Line of the path or, failing that, of its nearest enclosing table, key or array element. */
  line(path: readonly PathSegment[]): number | undefined {
    for (let n = path.length; n > 0; n--) {
      const found = this.lines.get(formatPath(path.slice(0, n)));
      if (found !== undefined) return found;
    }
    return undefined;
  }

  private record(path: readonly PathSegment[], line: number, explicit: boolean): void {
    for (let n = 1; n < path.length; n++) {
      const prefix = formatPath(path.slice(0, n));
      if (!this.lines.has(prefix)) this.lines.set(prefix, line);
    }
    const key = formatPath(path);
    if (!this.lines.has(key) || (explicit && !this.explicit.has(key))) this.lines.set(key, line);
    if (explicit) this.explicit.add(key);
  }

  // --- character level -------------------------------------------------------------------------

  private peek(offset = 0): string {
    return this.src[this.pos + offset] ?? "";
  }

  private eof(): boolean {
    return this.pos >= this.src.length;
  }

  private advance(): void {
    if (this.src[this.pos] === "\n") this.lineNo++;
    this.pos++;
  }

  private startsWith(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }

  private skipSpaces(): void {
    while (this.peek() === " " || this.peek() === "\t" || this.peek() === "\r") this.advance();
  }

  private skipToEndOfLine(): void {
    while (!this.eof() && this.peek() !== "\n") this.advance();
  }

  /** Spaces, comments and newlines. */
  private skipBlank(): void {
    for (;;) {
      this.skipSpaces();
      if (this.peek() === "#") this.skipToEndOfLine();
      if (this.peek() !== "\n") return;
      this.advance();
    }
  }

  // --- statements ------------------------------------------------------------------------------

  private scanDocument(): void {
    while (!this.eof()) {
      const start = this.pos;
      this.skipBlank();
      if (this.eof()) return;
      if (this.startsWith("[[")) {
        this.header(2);
      } else if (this.peek() === "[") {
        this.header(1);
      } else {
        this.keyValue(this.table);
      }
      // Whatever is left on the line is a comment (or something we do not understand).
      this.skipToEndOfLine();
      if (this.pos === start) this.advance();
    }
  }

  private header(brackets: 1 | 2): void {
    const line = this.lineNo;
    for (let i = 0; i < brackets; i++) this.advance();
    this.skipSpaces();
    const keys = this.key();
    if (keys === undefined) return;
    const resolved: PathSegment[] = [];
    keys.forEach((key, i) => {
      resolved.push(key);
      const id = formatPath(resolved);
      const count = this.arrays.get(id);
      if (i === keys.length - 1 && brackets === 2) {
        if (count === undefined) this.record(resolved, line, false);
        this.arrays.set(id, (count ?? 0) + 1);
        resolved.push(count ?? 0);
      } else if (count !== undefined) {
        // A header below an array of tables refers to its last element.
        resolved.push(count - 1);
      }
    });
    this.record(resolved, line, true);
    this.table = resolved;
  }

  private keyValue(table: readonly PathSegment[]): boolean {
    const line = this.lineNo;
    const keys = this.key();
    if (keys === undefined) return false;
    this.skipSpaces();
    if (this.peek() !== "=") return false;
    this.advance();
    this.skipSpaces();
    const path = [...table, ...keys];
    this.record(path, line, false);
    this.value(path);
    return true;
  }

  /** A dotted key: bare, "basic" or 'literal' parts separated by dots. */
  private key(): string[] | undefined {
    const parts: string[] = [];
    for (;;) {
      this.skipSpaces();
      const part = this.keyPart();
      if (part === undefined) return undefined;
      parts.push(part);
      this.skipSpaces();
      if (this.peek() !== ".") return parts;
      this.advance();
    }
  }

  private keyPart(): string | undefined {
    const c = this.peek();
    if (c === '"' || c === "'") {
      const start = this.pos;
      this.string(c, c === '"');
      const raw = this.src.slice(start, this.pos);
      if (c === "'") return raw.slice(1, -1);
      try {
        const decoded: unknown = JSON.parse(raw);
        return typeof decoded === "string" ? decoded : raw.slice(1, -1);
      } catch {
        return raw.slice(1, -1);
      }
    }
    const start = this.pos;
    while (/[A-Za-z0-9_-]/.test(this.peek())) this.advance();
    return this.pos > start ? this.src.slice(start, this.pos) : undefined;
  }

  // --- values ----------------------------------------------------------------------------------

  private value(path: readonly PathSegment[]): void {
    if (this.startsWith('"""')) this.multilineString('"""', true);
    else if (this.startsWith("'''")) this.multilineString("'''", false);
    else if (this.peek() === '"' || this.peek() === "'") this.string(this.peek(), this.peek() === '"');
    else if (this.peek() === "[") this.array(path);
    else if (this.peek() === "{") this.inlineTable(path);
    else while (!this.eof() && !",]}#\n".includes(this.peek())) this.advance();
  }

  private string(quote: string, escapes: boolean): void {
    this.advance();
    while (!this.eof() && this.peek() !== quote && this.peek() !== "\n") {
      if (escapes && this.peek() === "\\") this.advance();
      this.advance();
    }
    if (this.peek() === quote) this.advance();
  }

  private multilineString(delimiter: string, escapes: boolean): void {
    for (let i = 0; i < 3; i++) this.advance();
    while (!this.eof() && !this.startsWith(delimiter)) {
      if (escapes && this.peek() === "\\") this.advance();
      this.advance();
    }
    for (let i = 0; i < 3 && !this.eof(); i++) this.advance();
    // Up to two quotes right before the closing delimiter belong to the string.
    for (let i = 0; i < 2 && this.peek() === delimiter[0]; i++) this.advance();
  }

  private array(path: readonly PathSegment[]): void {
    this.advance();
    for (let index = 0; ; index++) {
      this.skipBlank();
      if (this.eof()) return;
      if (this.peek() === "]") {
        this.advance();
        return;
      }
      this.record([...path, index], this.lineNo, false);
      const before = this.pos;
      this.value([...path, index]);
      this.skipBlank();
      if (this.peek() === ",") {
        this.advance();
      } else {
        if (this.peek() === "]") this.advance();
        return;
      }
      if (this.pos === before) return;
    }
  }

  private inlineTable(path: readonly PathSegment[]): void {
    this.advance();
    for (;;) {
      this.skipBlank();
      if (this.eof()) return;
      if (this.peek() === "}") {
        this.advance();
        return;
      }
      if (!this.keyValue(path)) return;
      this.skipBlank();
      if (this.peek() === ",") {
        this.advance();
      } else {
        if (this.peek() === "}") this.advance();
        return;
      }
    }
  }
}

/** One-off lookup; build a {@link TomlLocator} instead when locating many paths in one text. */
export function locateLine(text: string, path: readonly PathSegment[]): number | undefined {
  return new TomlLocator(text).line(path);
}
