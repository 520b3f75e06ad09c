// A pass run again and again, never two at once: the loop of both Pod runners (pod-runner.ts, pod-sandbox.ts).

export class SerialPoller {
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Runs the pass now, then `intervalMs` after each pass ends, until {@link stop}. */
  start(): void {
    const tick = () => {
      void this.run(this.pass).then(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.intervalMs);
      });
    };
    tick();
  }

  /** Runs `work` after whatever is queued (a pass included); its error goes to onError. */
  run(work: () => Promise<void>): Promise<void> {
    this.#chain = this.#chain.then(work).catch((err: unknown) => this.onError(err));
    return this.#chain;
  }

  /** No pass after this one; resolves once the queued work has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#chain;
  }
}
