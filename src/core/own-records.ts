import type { ExportedService, ExportRecord } from './export-record.js';
import { Fingerprint, fingerprintService } from './fingerprint.js';
import type { Hlc } from './hlc.js';
import { compareStrings, serviceKey, splitServiceKey } from './ids.js';
import type { ClusterId, ServiceKey } from './ids.js';

function sameContent(a: ExportedService, b: ExportedService): boolean {
  const [a1, a2] = fingerprintService(new Fingerprint(), a).done();
  const [b1, b2] = fingerprintService(new Fingerprint(), b).done();
  return a1 === b1 && a2 === b2;
}

/**
 * What an origin must publish so that the ClusterSet holds exactly `desired` for it: a new version of every export
 * that is new or changed, and a tombstone for every export it held that is gone. `held` is what the state holds for
 * this origin, including records learned back from peers after a restart, so exports removed while the node was
 * down are tombstoned too. `stamp` issues versions (an {@link HlcClock} seeded with the origin's highest version).
 * Sorted by key; empty when nothing changed, so a level-triggered loop may call it at will.
 */
export function planOwnRecords(
  origin: ClusterId,
  held: readonly ExportRecord[],
  desired: ReadonlyMap<ServiceKey, ExportedService>,
  stamp: () => Hlc,
): ExportRecord[] {
  const heldByKey = new Map<ServiceKey, ExportRecord>();
  for (const r of held) if (r.origin === origin) heldByKey.set(serviceKey(r.namespace, r.name), r);
  const keys = new Set([...heldByKey.keys(), ...desired.keys()]);
  return planOwnRecordsFor(origin, (key) => heldByKey.get(key), desired, keys, stamp);
}

/**
 * {@link planOwnRecords} for some keys only: what the origin must publish for `keys` (those an event touched) so that
 * the ClusterSet holds `desired` for them. `heldOf` gives this origin's record of a key. Planning every key the origin
 * holds or desires gives exactly `planOwnRecords`.
 */
export function planOwnRecordsFor(
  origin: ClusterId,
  heldOf: (key: ServiceKey) => ExportRecord | undefined,
  desired: ReadonlyMap<ServiceKey, ExportedService>,
  keys: Iterable<ServiceKey>,
  stamp: () => Hlc,
): ExportRecord[] {
  const out: ExportRecord[] = [];
  for (const key of [...new Set(keys)].sort(compareStrings)) {
    const want = desired.get(key);
    const found = heldOf(key);
    const have = found?.origin === origin ? found : undefined;
    const { namespace, name } = splitServiceKey(key);
    if (want !== undefined) {
      if (have?.service !== undefined && sameContent(have.service, want)) continue;
      out.push({ origin, namespace, name, version: stamp(), removed: false, service: want });
    } else if (have !== undefined && !have.removed) {
      out.push({ origin, namespace, name, version: stamp(), removed: true });
    }
  }
  return out;
}
