// The receive checks of RFC 3768 §7.1 (v2) and RFC 5798 §7.1 (v3), in the order keepalived's
// vrrp_check_packet() applies them, so the counter that moves for a bad packet is the one
// keepalived would move. Pure: returns the first failing reason and a log line, or null.

import { VrrpInstanceConfig } from './config';
import { AUTH_AH, AUTH_NONE, AUTH_PASS, AdvertReceipt, AdvertDropReason, VRRP_TTL, VRRP_TYPE_ADVERTISEMENT, VrrpAdvert } from './types';

export interface CheckFailure {
  reason: AdvertDropReason;
  message: string;
}

function isMulticast(address: string): boolean {
  const first = Number.parseInt(address, 10);
  return first >= 224 && first <= 239;
}

/**
 * @param checkAddresses whether to compare the address list (keepalived skips it with
 *   skip_check_adv_addr while the advert comes from the master it already knows).
 */
export function checkAdvert(
  config: VrrpInstanceConfig,
  advert: VrrpAdvert,
  receipt: AdvertReceipt,
  checkAddresses: boolean,
): CheckFailure | null {
  // §7.1: "MUST verify that the received packet contains the complete VRRP packet
  // (including fixed fields, IP Address(es), and Authentication Data)".
  if (!receipt.lengthOk) {
    return { reason: 'lengthError', message: `packet from ${receipt.source} is shorter or longer than its address count says` };
  }
  // §7.1: "MUST verify that the IP TTL is 255". keepalived skips this for unicast peers,
  // which may sit behind a router.
  if (config.unicastPeers.length === 0 && receipt.ttl !== VRRP_TTL) {
    return { reason: 'ttlError', message: `invalid TTL from ${receipt.source}: received ${receipt.ttl}, expect ${VRRP_TTL}` };
  }
  // §7.1: "MUST verify the VRRP version".
  if (advert.version !== config.version) {
    return { reason: 'versionError', message: `wrong version from ${receipt.source}: received ${advert.version}, expect ${config.version}` };
  }
  if (config.version === 2) {
    // RFC 3768 §5.3.6: types 0..2 exist; anything else is invalid.
    if (advert.authType !== AUTH_NONE && advert.authType !== AUTH_PASS && advert.authType !== AUTH_AH) {
      return { reason: 'invalidAuthType', message: `invalid auth type ${advert.authType} from ${receipt.source}` };
    }
    // RFC 3768 §7.1: "MUST perform authentication specified by Auth Type"; a different type
    // is a misconfiguration (§10: log it).
    if (advert.authType !== config.authType) {
      return {
        reason: 'authTypeMismatch',
        message: `received auth type ${advert.authType} from ${receipt.source}, expecting ${config.authType}`,
      };
    }
    if (config.authType === AUTH_PASS && advert.authData !== config.authPass) {
      return { reason: 'authFailure', message: `received an invalid password from ${receipt.source}` };
    }
    // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as the
    // locally configured for this virtual router" — two intervals in one VRID would let
    // both routers become master.
    if (advert.advertIntCs !== Math.round(config.advertIntMs / 10)) {
      return {
        reason: 'intervalMismatch',
        message: `advertisement interval mismatch from ${receipt.source}: mine=${config.advertIntMs / 1000}s received=${advert.advertIntCs / 100}s`,
      };
    }
  }
  // RFC 3768 §5.3.2: only ADVERTISEMENT (1) is defined; "a packet with unknown type MUST be discarded".
  if (advert.type !== VRRP_TYPE_ADVERTISEMENT) {
    return { reason: 'typeError', message: `invalid packet type ${advert.type} from ${receipt.source}, expect ${VRRP_TYPE_ADVERTISEMENT}` };
  }
  const vipCount = config.virtualAddresses.length;
  if (checkAddresses && advert.addresses.length !== vipCount) {
    return {
      reason: 'addressListError',
      message: `received an unexpected ip number count ${advert.addresses.length} from ${receipt.source}, expected ${vipCount}`,
    };
  }
  // §7.1: "MUST verify the VRRP checksum" (the codec computed it; v3 includes the pseudo-header).
  if (!receipt.checksumOk) {
    return { reason: 'checksumError', message: `invalid VRRPv${config.version} checksum from ${receipt.source}` };
  }
  // keepalived: adverts must arrive multicast when we multicast, unicast when we have peers.
  const unicast = config.unicastPeers.length > 0;
  if (isMulticast(receipt.destination) === unicast) {
    return {
      reason: 'castMismatch',
      message: `expected ${unicast ? 'unicast' : 'multicast'} packet but received a ${unicast ? 'multicast' : 'unicast'} one from ${receipt.source}`,
    };
  }
  if (checkAddresses) {
    // §7.1: "MAY verify that the IP address(es) associated with the VRID are valid". RFC 3768
    // would still accept it from the owner (priority 255); keepalived drops it from anyone,
    // and we follow keepalived, since it is the peer users run.
    for (const vip of config.virtualAddresses) {
      if (!advert.addresses.includes(vip.address)) {
        return {
          reason: 'addressListError',
          message: `ip address associated with VRID ${config.vrid} not present in advert from ${receipt.source}: ${vip.address}`,
        };
      }
    }
    if (unicast && config.checkUnicastSource && !config.unicastPeers.includes(receipt.source)) {
      return { reason: 'unicastSourceError', message: `unicast source address ${receipt.source} is not a unicast peer` };
    }
  }
  return null;
}
