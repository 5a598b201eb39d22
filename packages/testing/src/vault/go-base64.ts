// Base64 decoding with the same acceptance rules and error text as Go's encoding/base64 StdEncoding,
// which Vault uses for plaintexts and ciphertexts. Node's Buffer.from(s, 'base64') accepts almost
// anything, so a faithful emulator has to do the strict decode itself.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

const CANONICAL = /^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PAD = 0x3d; // '='
const CR = 0x0d;
const LF = 0x0a;

/** Thrown with Go's message: `illegal base64 data at input byte N`. */
export class GoBase64Error extends Error {
  constructor(readonly offset: number) {
    super(`illegal base64 data at input byte ${offset}`);
    this.name = 'GoBase64Error';
  }
}

/** Decodes standard, padded base64 exactly as Go's `base64.StdEncoding.DecodeString` does. */
export function goBase64Decode(input: string): Buffer {
  if (input.length % 4 === 0 && CANONICAL.test(input)) return Buffer.from(input, 'base64');
  const src = Buffer.from(input, 'latin1');
  const out: number[] = [];
  let si = 0;
  while (si < src.length) {
    const buf = [0, 0, 0, 0];
    let dlen = 4;
    let j = 0;
    let end = false;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return Buffer.from(out);
        // Padding is required: a short final quantum is corrupt.
        throw new GoBase64Error(si - j);
      }
      const inByte = src[si] as number;
      si++;
      const value = DECODE[inByte] as number;
      if (value >= 0) {
        buf[j] = value;
        continue;
      }
      if (inByte === LF || inByte === CR) {
        j--;
        continue;
      }
      if (inByte !== PAD) throw new GoBase64Error(si - 1);
      // Padding: only valid in the third or fourth position.
      if (j === 0 || j === 1) throw new GoBase64Error(si - 1);
      if (j === 2) {
        while (si < src.length && (src[si] === LF || src[si] === CR)) si++;
        if (si === src.length) throw new GoBase64Error(src.length);
        if (src[si] !== PAD) throw new GoBase64Error(si - 1);
        si++;
      }
      while (si < src.length && (src[si] === LF || src[si] === CR)) si++;
      if (si < src.length) throw new GoBase64Error(si);
      dlen = j;
      end = true;
      break;
    }
    const [b0, b1, b2, b3] = buf as [number, number, number, number];
    const value = (b0 << 18) | (b1 << 12) | (b2 << 6) | b3;
    const bytes = [(value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff];
    out.push(...bytes.slice(0, dlen - 1));
    if (end) break;
  }
  return Buffer.from(out);
}
