/**
 * A map keyed by a (local domain, remote domain) pair, nested rather than keyed by a joined string:
 * the stanza path looks a queue up per stanza, and a nested lookup builds no key.
 */
export class PairMap<V> {
  private readonly byLocal = new Map<string, Map<string, V>>();

  get(local: string, remote: string): V | undefined {
    return this.byLocal.get(local)?.get(remote);
  }

  set(local: string, remote: string, value: V): void {
    let byRemote = this.byLocal.get(local);
    if (byRemote === undefined) {
      byRemote = new Map();
      this.byLocal.set(local, byRemote);
    }
    byRemote.set(remote, value);
  }

  delete(local: string, remote: string): void {
    const byRemote = this.byLocal.get(local);
    if (byRemote === undefined) return;
    byRemote.delete(remote);
    if (byRemote.size === 0) this.byLocal.delete(local);
  }

  *entries(): IterableIterator<[local: string, remote: string, value: V]> {
    for (const [local, byRemote] of this.byLocal) {
      for (const [remote, value] of byRemote) yield [local, remote, value];
    }
  }
}
