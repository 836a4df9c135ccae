/** Where a node or a local network keeps its files unless told otherwise: $TEECHAIN_HOME, else ./.teechain. */
import { join } from 'node:path';

export function defaultDatadir(): string {
  return process.env.TEECHAIN_HOME ?? join(process.cwd(), '.teechain');
}
