/**
 * What file transfer gives out, shared by its parts: frames for peers (offers, replies, requests:
 * the control frames, sent before acknowledgements and data), disk work for the I/O side
 * ({@link FileOp}), events for the user ({@link FileEvent}) and counted drops. Pure.
 *
 * @module
 */
import { toHex } from "../wire/codec.ts";
import type { FileFrame, FileOffer } from "../wire/file_frame.ts";

/** What the user is told about a transfer. */
export interface FileEvent {
  /** Offered to us; bytes moved; done (verified, in place; or the receiver has it); failed. */
  state: "offered" | "progress" | "done" | "failed";
  /** The transfer id in hex. */
  id: string;
  /** The file name (for incoming files: made safe, lib/files/safe_name.ts). */
  name: string;
  /** The file's length in bytes. */
  size: number;
  /** Bytes verified (incoming) or acknowledged in whole chunks (outgoing) so far. */
  bytes: number;
  /** The sending peer, for an incoming file. */
  from?: string;
  /** The receiving peer, for an outgoing file. */
  to?: string;
  /** SHA-256 of the file, hex. */
  sha256: string;
  /** Why it failed. */
  reason?: string;
  /** Where the file is (a receiver's `done`, from the I/O side). */
  path?: string;
}

/** Disk work for the I/O side. */
export type FileOp =
  | { op: "read"; id: string; chunk: number; position: number; length: number }
  | { op: "write"; id: string; chunk: number; position: number; data: Uint8Array }
  | { op: "save"; id: string; state: Uint8Array }
  | { op: "finish"; id: string; offer: FileOffer }
  | { op: "discard"; id: string; offer: FileOffer };

/** The output queues of file transfer. */
export class FileOutputs {
  readonly control: { to: string; frame: FileFrame }[] = [];
  readonly ops: FileOp[] = [];
  readonly events: FileEvent[] = [];
  /** Inputs dropped, by reason. */
  readonly drops = new Map<string, number>();

  /** Queues a control frame for `to`. */
  send(to: string, frame: FileFrame): void {
    this.control.push({ to, frame });
  }

  /** Counts a drop. */
  drop(reason: string): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
  }

  /** Queues an event about `offer` (shown as `name`). */
  event(e: Omit<FileEvent, "sha256" | "name" | "size">, offer: FileOffer, name: string): void {
    this.events.push({ ...e, name, size: offer.size, sha256: toHex(offer.sha256) });
  }
}
