// The packet codecs in one import: `import { Ipv4Header, DropReason, ... } from '../packet'`.
// Conventions shared by every header class are described in layer.ts.
export * from './layer';
export * from './drop';
export * from './addr';
export * from './checksum';
export * from './ethernet';
export * from './arp';
export * from './ipv4';
export * from './tcp';
export * from './udp';
export * from './icmp';
export * from './ipip';
export * from './vrrp';
