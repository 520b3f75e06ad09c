import type { Condition } from './kube-objects.js';

/** A condition as resolution decides it: no `lastTransitionTime`, which needs a clock (see {@link withTransitionTimes}). */
export interface ConditionData {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
}

export const CONDITION_VALID = 'Valid';
export const CONDITION_READY = 'Ready';
export const CONDITION_CONFLICT = 'Conflict';

/** Conflict reasons in the order they are reported (and joined by ","). */
export const CONFLICT_REASONS = [
  'PortConflict',
  'TypeConflict',
  'SessionAffinityConflict',
  'SessionAffinityConfigConflict',
  'AnnotationsConflict',
  'LabelsConflict',
  'InternalTrafficPolicyConflict',
  'TrafficDistributionConflict',
  'IPFamilyConflict',
] as const;
export type ConflictReason = (typeof CONFLICT_REASONS)[number];

/**
 * Stamps conditions with `lastTransitionTime`: kept from `previous` when type, status and reason are unchanged
 * (a new message alone is not a transition), `now` otherwise. Pure: the caller passes the time.
 */
export function withTransitionTimes(
  next: readonly ConditionData[],
  previous: readonly Condition[] | undefined,
  now: string,
): Condition[] {
  const prior = new Map((previous ?? []).map((c) => [c.type, c]));
  return next.map((c) => {
    const p = prior.get(c.type);
    const unchanged = p !== undefined && p.status === c.status && p.reason === c.reason;
    return { ...c, lastTransitionTime: unchanged ? p.lastTransitionTime : now };
  });
}

/** Whether two condition lists say the same (ignoring times): lets a controller skip a no-op status write. */
export function sameConditions(a: readonly ConditionData[], b: readonly ConditionData[]): boolean {
  if (a.length !== b.length) return false;
  const byType = new Map(b.map((c) => [c.type, c]));
  return a.every((c) => {
    const o = byType.get(c.type);
    return o !== undefined && o.status === c.status && o.reason === c.reason && o.message === c.message;
  });
}
