/**
 * Mutual remote attestation and key agreement between two treasury enclaves (three messages).
 *
 *   initiator                                   responder
 *   hs_hello  {id_I, eph_I, nonce_I}  ───────▶
 *             ◀─────── hs_reply {id_R, eph_R, nonce_R, quote_R(report = H(id_R‖eph_R), nonce = nonce_I)}
 *   hs_finish {quote_I(report = H(id_I‖eph_I), nonce = nonce_R)} ──▶
 *
 * Each side checks the other's quote against the trust anchor, the allowed measurements, its own fresh
 * nonce and the keys the peer announced, so a quote cannot be replayed and the ephemeral key is the
 * attested enclave's. Session keys come from ECDH(eph_I, eph_R) (see protocol/session.ts); identities are
 * long-lived enclave keys, the node ids.
 */
import { verifyQuote, reportDataFor, type Quote } from '../../../enclave-sim/quote-verify.ts';
import { randomPrivateKey, publicKeyOf, sharedSecret, isPublicKey } from '../../crypto/secp256k1.ts';
import { SecureSession } from '../protocol/session.ts';
import type { HandshakeMessage } from '../protocol/messages.ts';
import { TreasuryError } from './errors.ts';
import { bytesToHex, hexToBytes } from '../../../enclave-sim/encoding.ts';

export interface HandshakeDeps {
  identityPub: Uint8Array;
  trustAnchor: string;
  allowedMeasurements: string[];
  random(n: number): Uint8Array;
  quote(reportData: Uint8Array, nonce: Uint8Array): Promise<Quote>;
}

export type HandshakeStep =
  | { done: false; reply?: HandshakeMessage }
  | { done: true; reply?: HandshakeMessage; peerId: string; session: SecureSession };

/** One side of one handshake; feed it the peer's messages in order. */
export class Handshake {
  private readonly eph = randomPrivateKey();
  private readonly nonce: Uint8Array;
  private peerId?: Uint8Array;
  private peerEph?: Uint8Array;
  private peerNonce?: Uint8Array;
  private finished = false;

  constructor(
    private readonly deps: HandshakeDeps,
    readonly role: 'initiator' | 'responder',
  ) {
    this.nonce = deps.random(32);
  }

  /** The initiator's first message. */
  hello(): HandshakeMessage {
    return {
      t: 'hs_hello',
      id: bytesToHex(this.deps.identityPub),
      eph: bytesToHex(publicKeyOf(this.eph)),
      nonce: bytesToHex(this.nonce),
    };
  }

  /** @throws TreasuryError attestation_failed / self_connection / session_failed */
  async receive(msg: HandshakeMessage): Promise<HandshakeStep> {
    if (this.finished) throw new TreasuryError('session_failed', 'handshake message after the handshake finished');
    if (this.role === 'responder' && msg.t === 'hs_hello' && !this.peerId) {
      this.peerId = this.checkKey(msg.id);
      this.peerEph = this.checkKey(msg.eph);
      this.peerNonce = hexToBytes(msg.nonce);
      const quote = await this.deps.quote(reportDataFor(this.deps.identityPub, publicKeyOf(this.eph)), this.peerNonce);
      return {
        done: false,
        reply: {
          t: 'hs_reply',
          id: bytesToHex(this.deps.identityPub),
          eph: bytesToHex(publicKeyOf(this.eph)),
          nonce: bytesToHex(this.nonce),
          quote,
        },
      };
    }
    if (this.role === 'initiator' && msg.t === 'hs_reply' && !this.peerId) {
      this.peerId = this.checkKey(msg.id);
      this.peerEph = this.checkKey(msg.eph);
      this.peerNonce = hexToBytes(msg.nonce);
      this.verify(msg.quote, this.nonce, this.peerId, this.peerEph);
      const quote = await this.deps.quote(reportDataFor(this.deps.identityPub, publicKeyOf(this.eph)), this.peerNonce);
      return this.finish({ t: 'hs_finish', quote });
    }
    if (this.role === 'responder' && msg.t === 'hs_finish' && this.peerId && this.peerEph) {
      this.verify(msg.quote, this.nonce, this.peerId, this.peerEph);
      return this.finish(undefined);
    }
    throw new TreasuryError('session_failed', `unexpected handshake message ${msg.t}`);
  }

  private finish(reply: HandshakeMessage | undefined): HandshakeStep {
    this.finished = true;
    const initiator = this.role === 'initiator';
    const session = new SecureSession({
      ecdh: sharedSecret(this.eph, this.peerEph!),
      initiatorNonce: initiator ? this.nonce : this.peerNonce!,
      responderNonce: initiator ? this.peerNonce! : this.nonce,
      initiatorId: initiator ? this.deps.identityPub : this.peerId!,
      responderId: initiator ? this.peerId! : this.deps.identityPub,
      isInitiator: initiator,
    });
    return { done: true, reply, peerId: bytesToHex(this.peerId!), session };
  }

  private checkKey(hex: string): Uint8Array {
    const key = hexToBytes(hex);
    if (key.length !== 33 || !isPublicKey(key))
      throw new TreasuryError('session_failed', 'handshake carries an invalid public key');
    if (bytesToHex(key) === bytesToHex(this.deps.identityPub)) throw new TreasuryError('self_connection');
    return key;
  }

  private verify(quote: unknown, nonce: Uint8Array, peerId: Uint8Array, peerEph: Uint8Array): void {
    try {
      verifyQuote(quote, {
        trustAnchor: this.deps.trustAnchor,
        allowedMeasurements: this.deps.allowedMeasurements,
        expectedNonce: nonce,
        expectedReportData: reportDataFor(peerId, peerEph),
      });
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'unknown';
      throw new TreasuryError('attestation_failed', `peer attestation failed: ${code}`);
    }
  }
}
