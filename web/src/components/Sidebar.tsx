import { Link } from '../router.tsx';

export interface PageEntry {
  path: string;
  title: string;
}

export function Sidebar({ pages, current }: { pages: readonly PageEntry[]; current: string }) {
  return (
    <nav className="sidebar" aria-label="Pages">
      <ul>
        {pages.map((page) => (
          <li key={page.path}>
            <Link to={page.path} current={page.path === current}>
              {page.title}
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}
