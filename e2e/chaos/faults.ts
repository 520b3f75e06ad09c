// Network faults between the nodes, as iptables rules in one chain of our own (MCS-CHAOS, jumped to from INPUT) in the
// run's network namespace. Node i listens on and dials from 127.0.0.(i+1), so a rule on a pair of those addresses cuts
// exactly the gossip between two nodes; API servers (127.0.0.1) and the runner's probes (from 127.0.0.1) pass.
import { run } from './exec.js';
import { insideNamespace } from './netns.js';

export const CHAIN = 'MCS-CHAOS';

/** What one rule drops: packets from `src` to `dst`, all of them or a random share. */
export interface DropRule {
  readonly src: string;
  readonly dst: string;
  /** 0 < p < 1: random loss; undefined: everything. */
  readonly probability?: number;
}

export class Firewall {
  #ready = false;

  /** The network namespace the rules live in. */
  private constructor(readonly namespace: string) {}

  /**
   * Creates the chain (empty) and its jump from INPUT. Refuses unless this process runs in `namespace`: the host's
   * rules are never touched.
   */
  static async open(namespace: string): Promise<Firewall> {
    if (!(await insideNamespace(namespace))) {
      throw new Error(`refusing to change iptables: this process is not in the network namespace ${namespace}`);
    }
    const fw = new Firewall(namespace);
    await fw.#iptables(['-N', CHAIN], true);
    await fw.#iptables(['-F', CHAIN]);
    const jump = await fw.#iptables(['-C', 'INPUT', '-j', CHAIN], true);
    if (jump !== 0) await fw.#iptables(['-I', 'INPUT', '1', '-j', CHAIN]);
    fw.#ready = true;
    return fw;
  }

  async #iptables(args: readonly string[], allowFail = false): Promise<number> {
    // -w: wait for the xtables lock instead of failing when another iptables call holds it.
    const r = await run('iptables', ['-w', '5', ...args], { allowFail, timeoutMs: 15_000 });
    return r.code;
  }

  async drop(rules: readonly DropRule[]): Promise<void> {
    if (!this.#ready) throw new Error('the firewall is closed');
    for (const r of rules) {
      const random =
        r.probability === undefined
          ? []
          : ['-m', 'statistic', '--mode', 'random', '--probability', r.probability.toFixed(2)];
      await this.#iptables(['-A', CHAIN, '-s', `${r.src}/32`, '-d', `${r.dst}/32`, ...random, '-j', 'DROP']);
    }
  }

  /** Every packet between the two sides, both ways. */
  partition(sideA: readonly string[], sideB: readonly string[]): Promise<void> {
    return this.drop(
      sideA.flatMap((a) =>
        sideB.flatMap((b): DropRule[] => [
          { src: a, dst: b },
          { src: b, dst: a },
        ]),
      ),
    );
  }

  /** A random share of the packets between every two of `addresses`, each way. */
  loss(addresses: readonly string[], probability: number): Promise<void> {
    return this.drop(
      addresses.flatMap((a) =>
        addresses.filter((b) => b !== a).map((b): DropRule => ({ src: a, dst: b, probability })),
      ),
    );
  }

  /** The chain's rules as `iptables -S` prints them (for the log). */
  async rules(): Promise<string[]> {
    const r = await run('iptables', ['-w', '5', '-S', CHAIN], { allowFail: true });
    return r.stdout
      .split('\n')
      .filter((l) => l.startsWith('-A '))
      .map((l) => l.trim());
  }

  /** Packets dropped by the chain's rules so far (their counters): evidence that a fault bit. */
  async dropped(): Promise<number> {
    const r = await run('iptables', ['-w', '5', '-L', CHAIN, '-v', '-x', '-n'], { allowFail: true });
    let n = 0;
    for (const line of r.stdout.split('\n')) {
      const [pkts, , target] = line.trim().split(/\s+/);
      if (target === 'DROP' && pkts !== undefined && /^\d+$/.test(pkts)) n += Number(pkts);
    }
    return n;
  }

  /** Removes every rule of ours (the chain and its jump stay, empty). */
  async heal(): Promise<void> {
    if (this.#ready) await this.#iptables(['-F', CHAIN]);
  }

  /** Removes the chain and its jump. */
  async close(): Promise<void> {
    if (!this.#ready) return;
    this.#ready = false;
    await this.#iptables(['-F', CHAIN], true);
    await this.#iptables(['-D', 'INPUT', '-j', CHAIN], true);
    await this.#iptables(['-X', CHAIN], true);
  }
}
