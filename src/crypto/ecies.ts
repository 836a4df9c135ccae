/**
 * Sealing a small secret to one enclave's identity key (ECIES): a fresh ephemeral key, ECDH with the
 * recipient's public key, HKDF-SHA256, AES-256-GCM. Used to hand a deposit key or a secret share to one
 * named enclave through hosts and other enclaves that must not read it.
 *
 * Box layout (hex): ephemeral public key (33) || IV (12) || ciphertext || tag (16). The recipient's
 * public key is bound into the key derivation, so a box opened by the wrong key fails authentication.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { bytesToHex, hexToBytes } from '../../enclave-sim/encoding.ts';
import { publicKeyOf, randomPrivateKey, sharedSecret } from './secp256k1.ts';

const INFO = 'teechain-ts ecies v1';

function boxKey(ecdh: Uint8Array, ephPub: Uint8Array, recipientPub: Uint8Array): Buffer {
  const salt = Buffer.concat([ephPub, recipientPub]);
  return Buffer.from(hkdfSync('sha256', ecdh, salt, INFO, 32));
}

/** Encrypts `secret` so that only the holder of `recipientPub`'s private key can open it. */
export function sealTo(recipientPub: Uint8Array, secret: Uint8Array, aad = ''): string {
  const eph = randomPrivateKey();
  const ephPub = publicKeyOf(eph);
  const key = boxKey(sharedSecret(eph, recipientPub), ephPub, recipientPub);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(secret), cipher.final(), cipher.getAuthTag()]);
  return bytesToHex(Buffer.concat([ephPub, iv, ct]));
}

/** Opens a box sealed to `priv`'s public key; null when it was not (or was tampered with). */
export function openBox(priv: Uint8Array, box: string, aad = ''): Uint8Array | null {
  try {
    const bytes = hexToBytes(box);
    if (bytes.length < 33 + 12 + 16) return null;
    const ephPub = bytes.subarray(0, 33);
    const iv = bytes.subarray(33, 45);
    const body = bytes.subarray(45, bytes.length - 16);
    const tag = bytes.subarray(bytes.length - 16);
    const key = boxKey(sharedSecret(priv, ephPub), ephPub, publicKeyOf(priv));
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(tag);
    return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
  } catch {
    return null;
  }
}
