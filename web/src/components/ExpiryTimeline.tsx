import type { IssuedIdentity } from '../queries.ts';
import { formatTime, relativeTime } from '../time.ts';

const WIDTH = 960;
const LABEL = 250;
const RIGHT = 16;
const AXIS = 44;
const ROW = 24;
const BAR = 14;
const MAX_ROWS = 40;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const STEPS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 30 * DAY];

type State = 'fresh' | 'renewing' | 'expired';

/** The agent renews at about half the lifetime, so past half-life a certificate is due. */
function stateOf(identity: IssuedIdentity, now: number): State {
  const from = Date.parse(identity.issuedAt);
  const to = Date.parse(identity.notAfter);
  if (to <= now) return 'expired';
  return now >= from + (to - from) / 2 ? 'renewing' : 'fresh';
}

const STATE_LABEL: Record<State, string> = { fresh: 'valid', renewing: 'past half-life (renewal due)', expired: 'expired' };

/** Hours and minutes (UTC), with the date on the first tick and wherever a day begins. */
function tickLabel(t: number, first: boolean, span: number): string {
  const iso = new Date(t).toISOString();
  const withDate = first || span > 2 * DAY || t % DAY === 0;
  return withDate ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

/**
 * Certificate lifetimes on one time axis: a bar per identity from issuedAt to notAfter,
 * coloured by how far through its life it is, and a line at now. An SVG drawn by hand
 * keeps the bundle free of chart libraries.
 */
export function ExpiryTimeline({ identities, now }: { identities: IssuedIdentity[]; now: number }) {
  const rows = [...identities].sort((a, b) => Date.parse(a.notAfter) - Date.parse(b.notAfter)).slice(0, MAX_ROWS);
  if (rows.length === 0) return <p className="muted">The CA has issued no workload certificate in the namespaces you may see.</p>;

  const times = rows.flatMap((r) => [Date.parse(r.issuedAt), Date.parse(r.notAfter)]).concat(now);
  const min = Math.min(...times);
  const max = Math.max(...times);
  const pad = Math.max((max - min) * 0.03, MINUTE);
  const start = min - pad;
  const end = max + pad;
  const span = end - start;
  const x = (t: number): number => LABEL + ((t - start) / span) * (WIDTH - LABEL - RIGHT);
  const step = STEPS.find((s) => span / s <= 7) ?? 90 * DAY;
  const ticks: number[] = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) ticks.push(t);
  const height = AXIS + rows.length * ROW + 8;
  const counts = rows.reduce<Record<State, number>>((acc, r) => ({ ...acc, [stateOf(r, now)]: acc[stateOf(r, now)] + 1 }), { fresh: 0, renewing: 0, expired: 0 });

  return (
    <figure className="timeline">
      <svg
        viewBox={`0 0 ${WIDTH} ${height}`}
        width="100%"
        role="img"
        aria-label={`Certificate expiry timeline: ${rows.length} identities, ${counts.fresh} valid, ${counts.renewing} past half-life, ${counts.expired} expired`}
      >
        {ticks.map((t, i) => (
          <g key={t}>
            <line className="tl-grid" x1={x(t)} x2={x(t)} y1={20} y2={height - 4} />
            <text className="tl-tick" x={x(t)} y={14} textAnchor="middle">
              {tickLabel(t, i === 0, span)}
            </text>
          </g>
        ))}
        {rows.map((r, i) => {
          const y = AXIS + i * ROW;
          const from = x(Date.parse(r.issuedAt));
          const to = x(Date.parse(r.notAfter));
          const state = stateOf(r, now);
          const label = `${r.namespace}/${r.serviceAccount}`;
          return (
            <g key={`${r.spiffeId}-${r.serial}`} className="tl-row">
              <text className="tl-label" x={LABEL - 10} y={y + ROW / 2 + 4} textAnchor="end">
                {label.length > 34 ? `${label.slice(0, 33)}…` : label}
              </text>
              <rect className={`tl-bar tl-${state}`} x={from} y={y + (ROW - BAR) / 2} width={Math.max(2, to - from)} height={BAR} rx={3}>
                <title>{`${r.spiffeId}\nserial ${r.serial}\nissued ${formatTime(r.issuedAt)}\nexpires ${formatTime(r.notAfter)} (${relativeTime(r.notAfter, now)})\n${STATE_LABEL[state]}`}</title>
              </rect>
            </g>
          );
        })}
        <line className="tl-now" x1={x(now)} x2={x(now)} y1={AXIS - 12} y2={height - 2} />
        <text className="tl-now-label" x={x(now)} y={AXIS - 16} textAnchor="middle">
          now
        </text>
      </svg>
      <figcaption className="legend">
        <span className="legend-item">
          <span className="swatch tl-fresh" /> valid ({counts.fresh})
        </span>
        <span className="legend-item">
          <span className="swatch tl-renewing" /> past half-life, renewal due ({counts.renewing})
        </span>
        <span className="legend-item">
          <span className="swatch tl-expired" /> expired ({counts.expired})
        </span>
        {identities.length > rows.length ? <span className="muted">Showing the {rows.length} soonest to expire of {identities.length}.</span> : null}
      </figcaption>
    </figure>
  );
}
