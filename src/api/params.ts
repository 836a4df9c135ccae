/** Checks of request values that are more than a schema's shape: each throws 400 invalid_argument. */
import { NodeError } from '../node/errors.ts';

/** A p2p address, host:port (a name, an IPv4 address or a bracketed IPv6 one). */
export function addressParam(address: string): string {
  const m = /^([A-Za-z0-9.-]{1,100}|\[[0-9a-fA-F:]{2,45}\]):(\d{1,5})$/.exec(address);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65_535)
    throw new NodeError('invalid_argument', 'address must be host:port, the p2p address of the node to add');
  return address;
}
