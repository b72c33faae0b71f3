// A real OpenID provider (panva/oidc-provider) for federica's OIDC login test.
// Listens on 127.0.0.1 only. Its development sign-in page takes a login name; only the
// accounts below exist. Configured from the environment by the test.
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;

const ACCOUNTS = {
  alice: { name: 'Alice Example', email: 'alice@uni.example', groups: ['bgp-study', 'not-a-project'] },
  bob: { name: 'Bob Example', email: 'bob@uni.example', groups: [] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID,
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: [process.env.OIDC_REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  async findAccount(ctx, id) {
    const account = ACCOUNTS[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...account };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  // Claims in the ID token too (federica reads them there, or from userinfo).
  conformIdTokenClaims: false,
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
