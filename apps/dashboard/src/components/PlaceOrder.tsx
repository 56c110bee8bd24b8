import { useState, type FormEvent } from 'react';
import { gql, session, type Order, type Product } from '../api.ts';
import { message } from '../format.ts';
import { ORDER_FIELDS } from '../queries.ts';

export function PlaceOrder({ products, onPlaced }: { products: Product[]; onPlaced: (order: Order) => void }) {
  const identity = session.identity;
  const [customerId, setCustomerId] = useState(identity?.role === 'customer' ? identity.sub : 'walk-in');
  const [productId, setProductId] = useState('');
  const [quantity, setQuantity] = useState(1);
  const [error, setError] = useState<string | null>(null);
  const chosen = productId || products[0]?.id || '';
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const data = await gql<{ createOrder: Order }>(
        `mutation($input: CreateOrderInput!) { createOrder(input: $input) { ${ORDER_FIELDS} } }`,
        {
          input: { customerId, items: [{ productId: chosen, quantity }] },
        },
      );
      onPlaced(data.createOrder);
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <section aria-labelledby="place-title">
      <h2 id="place-title">Place an order</h2>
      <form className="place" onSubmit={(e) => void submit(e)}>
        <label>
          Customer
          <input value={customerId} onChange={(e) => setCustomerId(e.target.value)} required maxLength={100} />
        </label>
        <label>
          Product
          <select value={chosen} onChange={(e) => setProductId(e.target.value)}>
            {products.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name} ({p.availableStock} available)
              </option>
            ))}
          </select>
        </label>
        <label>
          Quantity
          <input type="number" min={1} value={quantity} onChange={(e) => setQuantity(Number(e.target.value))} required />
        </label>
        <button type="submit" disabled={!chosen}>
          Place order
        </button>
      </form>
      {error && <p role="alert">{error}</p>}
    </section>
  );
}
