/**
 * The regtest wallet that funds LDK channels: one P2WPKH key, coins from the faucet, and the funding
 * transaction LDK asks for (Event::FundingGenerationReady: pay `value` to the channel's 2-of-2 output
 * script), built and signed with our src/bitcoin templates. LDK checks it, hands it to the peer for its
 * signature and broadcasts it once the peer has signed the first commitment.
 */
import { Transaction } from 'bitcoinjs-lib';
import type { Faucet } from '../chain/faucet.ts';
import { p2wpkh } from '../bitcoin/p2wpkh.ts';
import { buildSpend, estimateVsize, type P2wpkhInput } from '../bitcoin/tx.ts';
import { signP2wpkhInput } from '../bitcoin/sign.ts';
import { publicKeyOf, randomPrivateKey } from '../crypto/secp256k1.ts';

/** Outputs below this are non-standard (dust) for P2WPKH: the change is dropped into the fee instead. */
const DUST_SAT = 546n;

export class FundingWallet {
  private readonly key = randomPrivateKey();
  private readonly pubkey = publicKeyOf(this.key);
  readonly address = p2wpkh(this.pubkey).address;
  private readonly utxos: P2wpkhInput[] = [];

  constructor(private readonly feeRateSatPerVb = 2n) {}

  /** Coins in the wallet (unconfirmed included). */
  get balanceSat(): bigint {
    return this.utxos.reduce((s, u) => s + u.valueSat, 0n);
  }

  /** Has the faucet pay `sats` to this wallet. */
  async fund(faucet: Faucet, sats: bigint): Promise<void> {
    const out = await faucet.fund(this.address, sats);
    this.utxos.push({ kind: 'p2wpkh', txid: out.txid, vout: out.vout, valueSat: out.valueSat, pubkey: this.pubkey });
  }

  /**
   * The signed transaction paying `valueSat` to `outputScript`, change back here. Spends every coin it
   * needs (all of them P2WPKH: LDK refuses a funding transaction with non-segwit inputs, whose txid could
   * be malleated). @throws when the wallet holds too little.
   */
  fundingTransaction(outputScript: Uint8Array, valueSat: bigint): Uint8Array {
    const changeScript = p2wpkh(this.pubkey).outputScript;
    const inputs: P2wpkhInput[] = [];
    let inSum = 0n;
    let fee = 0n;
    for (const u of this.utxos) {
      inputs.push(u);
      inSum += u.valueSat;
      fee = BigInt(estimateVsize(inputs, [outputScript, changeScript])) * this.feeRateSatPerVb;
      if (inSum >= valueSat + fee) break;
    }
    if (inSum < valueSat + fee)
      throw new Error(`funding wallet: ${inSum} sat is less than ${valueSat} sat + ${fee} sat fee`);
    const change = inSum - valueSat - fee;
    const outputs = [{ script: outputScript, valueSat }];
    if (change >= DUST_SAT) outputs.push({ script: changeScript, valueSat: change });
    const spend = buildSpend({ inputs, outputs });
    inputs.forEach((_, i) => signP2wpkhInput(spend, i, this.key));
    // The coins are spent once LDK accepts the transaction; the change becomes the next coin.
    this.utxos.splice(0, inputs.length);
    const tx = spend.tx;
    const txid = tx.getId();
    if (outputs.length === 2) this.utxos.push({ kind: 'p2wpkh', txid, vout: 1, valueSat: change, pubkey: this.pubkey });
    return tx.toBuffer();
  }
}

/** The txid of a serialized transaction. */
export function txidOf(tx: Uint8Array): string {
  return Transaction.fromBuffer(tx).getId();
}
