import { CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '../core/index.ts';
import { applyObjects, watchObjects, type SecretWatch } from '../kube/index.ts';
import { describeRoot } from './authority.ts';
import type { CaView } from './kube-ca.ts';
import { ROOT_CONFIGMAP, ROOT_CONFIGMAP_KEY, SIGNING_ROOT_ANNOTATION } from '../contract/index.ts';

/**
 * Publishes the trust bundle as ConfigMap `istio-ca-root-cert` in every namespace, as istiod
 * does: new namespaces get it when they appear, and a deleted or edited copy is put back.
 * Replicas may all do this; server-side apply of identical content changes nothing.
 */
export class RootPublisher {
  readonly #namespaces = new Set<string>();
  readonly #api: CoreV1Api;
  #watches: SecretWatch[] = [];
  #unsubscribe: (() => void) | undefined;
  #pending = Promise.resolve();

  constructor(
    private readonly kc: KubeConfig,
    private readonly ca: CaView,
    private readonly log: Logger,
    private readonly name: string = ROOT_CONFIGMAP,
  ) {
    this.#api = kc.makeApiClient(CoreV1Api);
  }

  async start(): Promise<void> {
    this.#unsubscribe = this.ca.onChange(() => this.#publishAll());
    this.#watches.push(
      await watchObjects<V1Namespace>(
        this.kc,
        { path: '/api/v1/namespaces', list: () => this.#api.listNamespace(), what: 'namespaces' },
        {
          onUpsert: (ns) => {
            const name = ns.metadata?.name;
            if (!name || ns.status?.phase === 'Terminating' || this.#namespaces.has(name)) return;
            this.#namespaces.add(name);
            this.#publish([name]);
          },
          onDelete: (ns) => this.#namespaces.delete(ns.metadata?.name ?? ''),
        },
        this.log,
      ),
      await watchObjects<V1ConfigMap>(
        this.kc,
        {
          path: '/api/v1/configmaps',
          list: () => this.#api.listConfigMapForAllNamespaces({ fieldSelector: `metadata.name=${this.name}` }),
          fieldSelector: `metadata.name=${this.name}`,
          what: `configmaps ${this.name}`,
        },
        {
          onUpsert: (cm) => {
            if (cm.data?.[ROOT_CONFIGMAP_KEY] !== this.#bundleText()) this.#publish([cm.metadata?.namespace ?? '']);
          },
          onDelete: (cm) => {
            const ns = cm.metadata?.namespace ?? '';
            if (this.#namespaces.has(ns)) this.#publish([ns]);
          },
        },
        this.log,
      ),
    );
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    await Promise.all(this.#watches.map((w) => w.stop()));
    await this.#pending;
  }

  /** Resolves once every publish queued so far is written (tests, `ca rotate --wait`). */
  async settled(): Promise<void> {
    await this.#pending;
  }

  #bundleText(): string {
    return this.ca.bundle().join('');
  }

  #publishAll(): void {
    this.#publish([...this.#namespaces]);
  }

  /** Writes are queued one after another, so a slow apiserver never sees a burst. */
  #publish(namespaces: string[]): void {
    this.#pending = this.#pending.then(async () => {
      const data = { [ROOT_CONFIGMAP_KEY]: this.#bundleText() };
      const annotations = { [SIGNING_ROOT_ANNOTATION]: describeRoot(this.ca.signingRoot()).fingerprint };
      for (const namespace of namespaces.filter((n) => this.#namespaces.has(n))) {
        try {
          await applyObjects(this.kc, [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: this.name, namespace, annotations }, data } as V1ConfigMap]);
        } catch (error) {
          this.log.warn({ err: error, namespace }, `could not publish ${this.name}; the next change or resync retries`);
        }
      }
    });
  }
}
