import { useState } from 'react';
import { session, type Status } from '../api.ts';

export function SignIn({ auth, onChange }: { auth: Status['auth'] | undefined; onChange: () => void }) {
  const [draft, setDraft] = useState('');
  const identity = session.identity;
  if (auth !== 'jwt') return <p className="auth">Authentication is off: full access.</p>;
  if (identity) {
    return (
      <p className="auth">
        Signed in as <strong>{identity.sub}</strong> ({identity.role}){' '}
        <button
          type="button"
          onClick={() => {
            session.token = null;
            onChange();
          }}
        >
          Sign out
        </button>
      </p>
    );
  }
  return (
    <form
      className="auth"
      onSubmit={(e) => {
        e.preventDefault();
        session.token = draft.trim();
        setDraft('');
        onChange();
      }}
    >
      <label htmlFor="token">Bearer token</label>
      <input
        id="token"
        type="password"
        value={draft}
        onChange={(e) => setDraft(e.target.value)}
        placeholder="npm run token -- --role admin --sub me"
      />
      <button type="submit">Sign in</button>
    </form>
  );
}
