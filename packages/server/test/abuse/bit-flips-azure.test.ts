import { bitFlipSuite } from './bit-flips.js';

bitFlipSuite('azure');
