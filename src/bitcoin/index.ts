export { REGTEST, addressToOutputScript, outputScriptToAddress } from './network.ts';
export { toHex, fromHex, compareBytes, equalBytes } from './bytes.ts';
export { p2wpkh, p2wpkhScriptCode, p2wpkhWitness, assertCompressedPubkey, type P2wpkhOutput } from './p2wpkh.ts';
export {
  MAX_MULTISIG_KEYS,
  multisigP2wsh,
  sortPublicKeys,
  parseMultisigScript,
  multisigWitness,
  type MultisigP2wsh,
  type KeyedSignature,
} from './multisig.ts';
export {
  MAX_MONEY_SAT,
  FINAL_SEQUENCE,
  buildSpend,
  prevOutputScript,
  spendFee,
  estimateVsize,
  txidToHash,
  type P2wpkhInput,
  type MultisigInput,
  type SpendableInput,
  type OutputSpec,
  type Spend,
  type BuildSpendOptions,
} from './tx.ts';
export {
  SIGHASH_ALL,
  witnessV0Sighash,
  signInput,
  encodeScriptSignature,
  verifyInputSignature,
  signP2wpkhInput,
  finalizeMultisigInput,
} from './sign.ts';
