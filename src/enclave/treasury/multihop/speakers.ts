/**
 * Who may sign a treasury's routing announcement (docs/protocol/multihop.md, "Routing"). A lone treasury,
 * and a committee in its founding view, sign with the key the announcement names (`ann.node`, the
 * treasury id). A committee in a later view signs with its current primary's key and says why (`by`): its
 * roster proof and the certificate of its view. That counts only if it holds as it would for a channel
 * peer of the committee (peer-views.ts): every quote of the roster a genuine enclave on its own platform,
 * the roster's first member `ann.node`, the certificate reached from that roster through the committee's
 * roster changes with q votes at every link, and the signer first in it. Never on the signer's word: a
 * member can be primary only by a quorum of the committee, whose enclaves vote only for views of their
 * own committee (the treasury id is in what they sign).
 *
 * Verified bindings (treasury → epoch, signer) are kept, so a later announcement of the same view costs
 * its signature alone, and one of an older view is refused: a former primary that still announces (it
 * came back, or was cut off) cannot take the graph back. Not state: rebuilt from the next announcements.
 */
import { followPeerView } from '../../committee/roster-change.ts';
import { verifyRoster, type RosterTrust } from '../../committee/roster.ts';
import type { SpeakerProof } from '../../protocol/messages.ts';

/** Whose key an announcement must carry, and the view that says so (0: the founding one). */
export interface Speaker {
  signer: string;
  epoch: number;
}

export class Speakers {
  private readonly known = new Map<string, Speaker>();

  constructor(private readonly trust: () => RosterTrust) {}

  /** The speaker of `node`'s announcement per `by` (absent: the founding view), or null if that does not hold. */
  check(node: string, by: SpeakerProof | undefined): Speaker | null {
    const known = this.known.get(node);
    const claimed = by ? { signer: by.cert.members[0]!, epoch: by.cert.epoch } : { signer: node, epoch: 0 };
    if (known && known.epoch > claimed.epoch) return null;
    if (known && known.epoch === claimed.epoch) return known.signer === claimed.signer ? known : null;
    if (by) {
      try {
        const roster = verifyRoster({ threshold: by.threshold, members: by.members }, node, this.trust(), node);
        const { cert } = followPeerView(roster, by.cert, by.chain ?? []);
        if (cert.members[0] !== claimed.signer || cert.epoch !== claimed.epoch) return null;
      } catch {
        return null;
      }
    }
    this.known.set(node, claimed);
    return claimed;
  }
}
