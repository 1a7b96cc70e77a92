#!/usr/bin/env bun
// npm/bunx entry point: uring-sync is a Bun program (bun:ffi); this just loads the CLI.
import "../src/cli/main.ts";
