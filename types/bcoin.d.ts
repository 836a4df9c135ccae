// bcoin ships no type declarations; it is used only behind src/chain/embedded, which types what it touches.
declare module 'bcoin' {
  const bcoin: any;
  export default bcoin;
}
