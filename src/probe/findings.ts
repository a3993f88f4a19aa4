/**
 * What a diagnosis found, in sentences: problems (federation would fail, or fail with many servers)
 * and warnings (worth fixing, but Ferry would get through). Each has a stable code for programs.
 */
export interface Finding {
  code: string;
  text: string;
}

export class Findings {
  readonly problems: Finding[] = [];
  readonly warnings: Finding[] = [];

  problem(code: string, text: string): void {
    add(this.problems, code, text);
  }

  warning(code: string, text: string): void {
    add(this.warnings, code, text);
  }
}

/** The same finding on several addresses (one certificate served everywhere) is listed once. */
function add(list: Finding[], code: string, text: string): void {
  if (!list.some((f) => f.code === code && f.text === text)) list.push({ code, text });
}
