/** An error in how a command was called (bad flag, missing argument, invalid input): exit code 2, one line. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
