/** One `mcs-gossip <name>` subcommand. `run` returns the process exit code. */
export interface Command {
  readonly name: string;
  /** One line, shown in `mcs-gossip --help`. */
  readonly summary: string;
  /** Full help text, shown by `mcs-gossip <name> --help`. */
  readonly usage: string;
  run(argv: readonly string[]): Promise<number>;
}
