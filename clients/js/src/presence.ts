// Who is in each joined project room, over every replica, as last heard from the bridge
// (docs/clients.md, "Presence"): a full list after each join, then one change at a time.

import type { PresenceMember } from "./generated/schemas.js";
import type { PresenceMessage } from "./transports/types.js";

export class PresenceBook {
  readonly #projects = new Map<string, Map<string, PresenceMember>>();

  /** Take in a list or a change; returns the project it is about. */
  apply(message: PresenceMessage): string {
    const project = message.project_id;
    let members = this.#projects.get(project);
    if (message.kind === "presence" || !members) {
      members = new Map(message.kind === "presence" ? message.members.map((m) => [m.user_id, m]) : []);
      this.#projects.set(project, members);
    }
    if (message.kind === "presence_left") members.delete(message.user_id);
    else if (message.kind !== "presence") members.set(message.member.user_id, message.member);
    return project;
  }

  /** The members of a project by user id (empty before its room's list arrived). */
  members(project: string): PresenceMember[] {
    const members = this.#projects.get(project);
    return members ? [...members.values()].sort((a, b) => (a.user_id < b.user_id ? -1 : 1)) : [];
  }
}
