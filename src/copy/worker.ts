/**
 * Worker entry of the copy engine: one Copier (its own io_uring ring, buffers, dlopen'ed
 * libc and liburing, as FIELD_NOTES asks: one per thread) driven by the coordinator's
 * messages (engine.ts). Tasks run one at a time, synchronously; events go back batched,
 * except new subdirectories, offered big files and hard links, which are sent at once so
 * other workers can start on them.
 *
 * Build note: `bun build --compile` needs this file as an extra entry point
 * (src/copy/worker.ts); engine.ts starts it with new URL("./worker.ts", import.meta.url).
 * Owns: the message loop. Never decides anything about files itself.
 */
import { Copier } from "./copier.ts";
import { C, type CopierEvent, type WorkerIn, type WorkerOut } from "./protocol.ts";

declare const self: Worker;

let copier: Copier | null = null;
let pending: CopierEvent[] = [];

function post(m: WorkerOut): void {
  self.postMessage(m);
}

function flush(): void {
  if (pending.length === 0) return;
  post({ t: "events", events: pending });
  pending = [];
}

function emit(ev: CopierEvent): void {
  pending.push(ev);
  if (ev.e === "subdir" || ev.e === "offload" || ev.e === "link" || ev.e === "chunk" || pending.length >= 256) flush();
}

self.onmessage = (m: MessageEvent<WorkerIn>): void => {
  const msg = m.data;
  try {
    switch (msg.t) {
      case "init": {
        const counters = new Float64Array(msg.counters, msg.index * C.size * 8, C.size);
        copier = new Copier(msg.cfg, counters, new Int32Array(msg.abort), emit);
        post({ t: "ready", backend: copier.ring.kind, detail: copier.ring.backend.detail });
        return;
      }
      case "dir": {
        const ok = copier!.runDir(msg);
        emit({ e: "done", id: msg.id, ok, final: copier!.lastFinalized });
        flush();
        return;
      }
      case "chunk": {
        const ok = copier!.runChunk(msg);
        emit({ e: "done", id: msg.id, ok, final: false });
        flush();
        return;
      }
      case "file": {
        const ok = copier!.runFile(msg);
        emit({ e: "done", id: msg.id, ok, final: false });
        flush();
        return;
      }
      case "exit": {
        flush();
        copier?.close();
        copier = null;
        (self as unknown as { close(): void }).close();
        return;
      }
    }
  } catch (e) {
    flush();
    post({ t: "fatal", message: e instanceof Error ? `${e.message}${process.env.URING_SYNC_DEBUG === "1" ? `\n${e.stack}` : ""}` : String(e) });
  }
};
