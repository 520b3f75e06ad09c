import type { ServicePort } from './export-record.js';
import { compareStrings } from './ids.js';
import { MAX_IMPORT_PORTS } from './importability.js';

function samePort(a: ServicePort, b: ServicePort): boolean {
  return a.name === b.name && a.protocol === b.protocol && a.port === b.port && a.appProtocol === b.appProtocol;
}

/** Whether two port lists hold the same ports, in any order. Absent appProtocol differs from "". */
export function samePorts(a: readonly ServicePort[], b: readonly ServicePort[]): boolean {
  return (
    a.length === b.length &&
    a.every((p) => b.some((q) => samePort(p, q))) &&
    b.every((q) => a.some((p) => samePort(p, q)))
  );
}

/**
 * The union of the exporters' ports (KEP "Service Port"), given port lists in precedence order (oldest export
 * first): merged by name first, then by (protocol, port), so the result has unique names and unique protocol+port
 * pairs; on a clash the earlier (older) exporter's port wins. The union stays a valid Service port list: an unnamed
 * port joins only an empty union and no port joins one holding an unnamed port (a Service of several ports names
 * each), and it stops at the ServiceImport's {@link MAX_IMPORT_PORTS}. Each list given is one importable exporter's,
 * so the oldest exporter's ports are always all there. Sorted by name, then protocol and port.
 */
export function mergePorts(byPrecedence: readonly (readonly ServicePort[])[]): ServicePort[] {
  const byName = new Set<string>();
  const byProtocolPort = new Set<string>();
  const out: ServicePort[] = [];
  for (const ports of byPrecedence) {
    for (const p of ports) {
      const name = p.name ?? '';
      const protocolPort = `${p.protocol}/${p.port}`;
      if (byName.has(name) || byProtocolPort.has(protocolPort)) continue;
      if (out.length >= MAX_IMPORT_PORTS || (out.length > 0 && (name === '' || byName.has('')))) continue;
      byName.add(name);
      byProtocolPort.add(protocolPort);
      out.push(p);
    }
  }
  return out.sort(comparePorts);
}

function comparePorts(a: ServicePort, b: ServicePort): number {
  return compareStrings(a.name ?? '', b.name ?? '') || compareStrings(a.protocol, b.protocol) || a.port - b.port;
}

/** Ports sorted by name, then protocol and port: `ports` itself when already sorted (lists are immutable here). */
export function sortPorts<P extends readonly ServicePort[]>(ports: P): P | ServicePort[] {
  for (let i = 1; i < ports.length; i++)
    if (comparePorts(ports[i - 1]!, ports[i]!) > 0) return [...ports].sort(comparePorts);
  return ports;
}
