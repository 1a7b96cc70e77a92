// tests/helpers/throws.ts — what a call throws, for tests that assert on the error itself
// (its class, its ProtocolError kind, its message), not only that something was thrown.
import { ProtocolError } from "../../src/errors.ts";

/** The error `f` throws; fails the test when it throws nothing. */
export function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected an exception");
}

/**
 * The ProtocolError kind `f` throws, or "no error". Any other error is rethrown: a crash
 * where a peer's bad input should be refused is a failure of its own, shown as it is.
 */
export function kindOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ProtocolError) return e.kind;
    throw e;
  }
  return "no error";
}
