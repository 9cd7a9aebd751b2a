/** `2030-01-01 12:00 UTC`: absolute and unambiguous across the operators of one cluster. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** `in 3 h`, `5 min ago`: the distance an operator acts on. */
export function relativeTime(iso: string | null | undefined, now: number): string {
  if (!iso) return '';
  const ms = new Date(iso).getTime() - now;
  if (Number.isNaN(ms)) return '';
  const abs = Math.abs(ms);
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
  ];
  const [size, unit] = units.find(([size]) => abs >= size) ?? [1000, 's'];
  const amount = Math.round(abs / size);
  return ms >= 0 ? `in ${amount} ${unit}` : `${amount} ${unit} ago`;
}
