import type { Product } from '../api.ts';

const lowStock = (p: Product) => p.availableStock <= Math.max(5, Math.floor(0.1 * (p.availableStock + p.reservedStock + p.soldStock)));

export function Catalog({ products, error }: { products: Product[]; error: string | null }) {
  return (
    <section aria-labelledby="catalog-title">
      <h2 id="catalog-title">Catalog</h2>
      {error && <p role="alert">{error}</p>}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col">Available</th>
              <th scope="col">Reserved</th>
              <th scope="col">Sold</th>
              <th scope="col">Backordered</th>
              <th scope="col">Available by location</th>
            </tr>
          </thead>
          <tbody>
            {products.map((p) => (
              <tr key={p.id} className={lowStock(p) ? 'low' : undefined} data-product={p.id}>
                <th scope="row">
                  {p.name} <span className="muted">{p.sku}</span>
                  {lowStock(p) && <span className="badge">low stock</span>}
                </th>
                <td data-field="available">{p.availableStock}</td>
                <td data-field="reserved">{p.reservedStock}</td>
                <td data-field="sold">{p.soldStock}</td>
                <td data-field="backordered">{p.backorderedStock}</td>
                <td data-field="locations" className="muted">
                  {p.stockLevels.map((l) => `${l.location.code} ${l.available}`).join(' · ')}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
