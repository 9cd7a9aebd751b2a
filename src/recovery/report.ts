import type { ActionVerb } from './plan.ts';
import type { StepName } from './steps.ts';

export interface TouchedObject {
  action: ActionVerb;
  kind: string;
  namespace?: string;
  name: string;
  detail?: string;
}

export type StepStatus = 'done' | 'already-done' | 'skipped' | 'failed' | 'not-run';

export interface StepReport {
  step: StepName;
  status: StepStatus;
  durationMs: number;
  objects: TouchedObject[];
  /** What the operator should know or do next. */
  notes: string[];
  /** Things that did not go as hoped but do not make the recovery fail (a pod that did not come back). */
  warnings: string[];
  error?: { code: string; message: string; hint?: string };
}

export type CheckStatus = 'passed' | 'failed' | 'skipped' | 'warning';

export interface CheckResult {
  step: StepName;
  check: string;
  status: CheckStatus;
  detail: string;
  durationMs: number;
}

/** What `meshid recover -o json` prints. */
export interface RecoveryReport {
  id: string;
  resumed: boolean;
  meshidNamespace: string;
  meshNamespaces: string[];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  steps: StepReport[];
  verification: { durationMs: number; checks: CheckResult[] };
  /** Every step done and no check failed. */
  ok: boolean;
}

export function newStepReport(step: StepName): StepReport {
  return { step, status: 'not-run', durationMs: 0, objects: [], notes: [], warnings: [] };
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const MARK: Record<CheckStatus, string> = { passed: '✔', failed: '✖', skipped: '-', warning: '!' };

/** The report for people: what each step did and how long it took, then every check. */
export function renderReport(report: RecoveryReport): string {
  const lines = [`Recovery ${report.id}${report.resumed ? ' (resumed)' : ''} in ${report.meshidNamespace}: ${report.ok ? 'complete' : 'NOT complete'} in ${secs(report.durationMs)}`, ''];
  const width = Math.max(...report.steps.map((s) => s.step.length), 'verification'.length);
  for (const step of report.steps) {
    const counts = new Map<string, number>();
    for (const o of step.objects) counts.set(o.action, (counts.get(o.action) ?? 0) + 1);
    const touched = [...counts].map(([action, n]) => `${action} ${n}`).join(', ');
    lines.push(`${step.step.padEnd(width)}  ${step.status.padEnd(12)} ${secs(step.durationMs).padStart(7)}  ${touched}`);
    if (step.error) lines.push(`${' '.repeat(width)}  error: ${step.error.message} [${step.error.code}]${step.error.hint ? `\n${' '.repeat(width)}  hint: ${step.error.hint}` : ''}`);
    for (const w of step.warnings) lines.push(`${' '.repeat(width)}  warning: ${w}`);
  }
  lines.push(`${'verification'.padEnd(width)}  ${''.padEnd(12)} ${secs(report.verification.durationMs).padStart(7)}`, '');
  for (const c of report.verification.checks) lines.push(`${MARK[c.status]} ${c.step}: ${c.check}: ${c.detail}`);
  const notes = report.steps.flatMap((s) => s.notes.map((n) => `${s.step}: ${n}`));
  if (notes.length > 0) lines.push('', 'Next:', ...notes.map((n) => `  ${n}`));
  return `${lines.join('\n')}\n`;
}
