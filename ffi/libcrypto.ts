/**
 * Thin typed bindings to OpenSSL's libcrypto (the EVP cipher calls the record layer
 * needs), named after the C symbols.
 *
 * Why: node:crypto's Cipheriv can only return each update() as a fresh buffer, so every
 * 16 KiB record costs an allocation, a copy and, on a busy transfer, page faults (measured:
 * most of the user-space record layer's cost, bench/record-seal.ts). EVP_CipherUpdate
 * writes where it is told, in place if asked, and one EVP_CIPHER_CTX keeps its key
 * schedule across records (only the nonce changes).
 *
 * Owns: loading libcrypto if it is there. Exports `libcrypto === null` when it is not (or
 * when URING_SYNC_NO_LIBCRYPTO=1), so callers fall back to node:crypto. Never decides
 * policy; pointers are plain addresses, as everywhere in ffi/.
 */
import { dlopen, FFIType } from "bun:ffi";

const SYMBOLS = {
  EVP_CIPHER_CTX_new: { args: [], returns: FFIType.u64_fast },
  EVP_CIPHER_CTX_free: { args: [FFIType.u64_fast], returns: "void" },
  EVP_aes_128_gcm: { args: [], returns: FFIType.u64_fast },
  EVP_aes_256_gcm: { args: [], returns: FFIType.u64_fast },
  EVP_chacha20_poly1305: { args: [], returns: FFIType.u64_fast },
  /** (ctx, cipher, engine, key, iv, enc): NULL cipher/key keeps them and only resets the IV. */
  EVP_CipherInit_ex: { args: [FFIType.u64_fast, FFIType.u64_fast, FFIType.u64_fast, FFIType.u64_fast, FFIType.u64_fast, "i32"], returns: "i32" },
  /** (ctx, out, &outl, in, inl): out NULL = AAD. */
  EVP_CipherUpdate: { args: [FFIType.u64_fast, FFIType.u64_fast, FFIType.u64_fast, FFIType.u64_fast, "i32"], returns: "i32" },
  /** (ctx, out, &outl): for AEAD decryption, 1 only when the tag verifies. */
  EVP_CipherFinal_ex: { args: [FFIType.u64_fast, FFIType.u64_fast, FFIType.u64_fast], returns: "i32" },
  EVP_CIPHER_CTX_ctrl: { args: [FFIType.u64_fast, "i32", "i32", FFIType.u64_fast], returns: "i32" },
  OpenSSL_version: { args: ["i32"], returns: "cstring" },
} as const;

/** EVP_CIPHER_CTX_ctrl commands (openssl/evp.h; the GCM and AEAD names share values). */
export const EVP_CTRL = {
  AEAD_SET_IVLEN: 0x9,
  AEAD_GET_TAG: 0x10,
  AEAD_SET_TAG: 0x11,
} as const;

type LibcryptoSymbols = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];

export interface Libcrypto {
  readonly symbols: LibcryptoSymbols;
  /** e.g. "OpenSSL 3.0.19 27 Jan 2026". */
  readonly version: string;
}

/** Why libcrypto could not be loaded, when it could not. */
export let libcryptoError: string | undefined;

function load(): Libcrypto | null {
  if (process.env.URING_SYNC_NO_LIBCRYPTO === "1") {
    libcryptoError = "disabled by URING_SYNC_NO_LIBCRYPTO=1";
    return null;
  }
  const errors: string[] = [];
  // 3.x first; 1.1 has the same EVP calls.
  for (const name of ["libcrypto.so.3", "libcrypto.so.1.1"]) {
    try {
      const lib = dlopen(name, SYMBOLS);
      return { symbols: lib.symbols, version: String(lib.symbols.OpenSSL_version(0)) };
    } catch (e) {
      errors.push(e instanceof Error ? e.message.split("\n")[0] : String(e));
    }
  }
  libcryptoError = errors.join("; ");
  return null;
}

let loaded: Libcrypto | null | undefined;

/** libcrypto, loaded on first use; null when absent. */
export function libcrypto(): Libcrypto | null {
  if (loaded === undefined) loaded = load();
  return loaded;
}
